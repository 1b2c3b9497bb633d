/*
 * The API documentation page (/api/v0/docs/): Swagger UI, vendored under
 * /static/vendor/swagger-ui/, on the schema at /api/v0/schema/. A static file
 * rather than an inline script so the page runs under script-src 'self'.
 * "Try it out" calls go with the page's session; unsafe methods carry the
 * CSRF token the page was rendered with.
 */
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  var csrfToken = root.dataset.csrfToken;
  window.ui = SwaggerUIBundle({
    url: root.dataset.schemaUrl,
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    requestInterceptor: function (request) {
      if (csrfToken) {
        request.headers["X-CSRFToken"] = csrfToken;
      }
      return request;
    },
  });
})();
