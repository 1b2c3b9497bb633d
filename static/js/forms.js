// Forms: upload progress, and a warning before leaving unsaved changes.
// Kept out of the HTML: the Content-Security-Policy forbids inline script.

// <form data-upload-progress enctype="multipart/form-data">: sent with
// XMLHttpRequest so that a <progress> shows how much of the file has gone.
// The server answers the form's redirect as {"redirect": url} for such a
// request (opsconsole/uploads.py); the page then goes there, where the
// result is shown. Without JavaScript (or XMLHttpRequest) the form posts as
// a plain form; if the request cannot be sent, it falls back to that too.
(() => {
  const size = (n) => {
    if (n >= 1024 * 1024) {
      return `${(n / 1024 / 1024).toFixed(1)} MB`;
    }
    return `${Math.ceil(n / 1024)} KB`;
  };

  function progressFor(form) {
    let box = form.querySelector(".upload-progress");
    if (!box) {
      box = document.createElement("div");
      box.className = "upload-progress";
      box.setAttribute("role", "status");
      const bar = document.createElement("progress");
      bar.max = 100;
      bar.value = 0;
      const text = document.createElement("span");
      text.className = "upload-progress-text";
      box.append(bar, " ", text);
      form.append(box);
    }
    box.hidden = false;
    return { bar: box.querySelector("progress"), text: box.querySelector(".upload-progress-text") };
  }

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (event.defaultPrevented || !form.matches || !form.matches("form[data-upload-progress]")) {
      return;
    }
    if (!window.XMLHttpRequest || !window.FormData) {
      return;
    }
    event.preventDefault();
    const { bar, text } = progressFor(form);
    const buttons = form.querySelectorAll("button[type=submit]");
    buttons.forEach((b) => {
      b.disabled = true;
    });
    const label = form.dataset.uploadProgress || "Uploading";
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.action || window.location.href);
    xhr.setRequestHeader("X-Upload-Progress", "1");
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) {
        bar.max = e.total;
        bar.value = e.loaded;
        const pct = Math.floor((100 * e.loaded) / e.total);
        text.textContent = `${label}: ${pct}% (${size(e.loaded)} of ${size(e.total)})`;
      }
    });
    xhr.upload.addEventListener("load", () => {
      bar.value = bar.max;
      text.textContent = `${label}: sent; the server is checking the file…`;
    });
    xhr.addEventListener("load", () => {
      let answer = null;
      try {
        answer = JSON.parse(xhr.responseText);
      } catch (_) {
        answer = null;
      }
      form.dataset.unsaved = "";
      if (answer && answer.redirect) {
        window.location.assign(answer.redirect);
        return;
      }
      if (xhr.status < 400 && xhr.responseURL) {
        window.location.assign(xhr.responseURL);
        return;
      }
      text.textContent = `The upload failed: the server answered HTTP ${xhr.status}.`;
      buttons.forEach((b) => {
        b.disabled = false;
      });
    });
    xhr.addEventListener("error", () => {
      // The request could not be sent this way: send the plain form.
      form.removeAttribute("data-upload-progress");
      form.submit();
    });
    xhr.send(new FormData(form));
  });
})();

// A form the operator changed asks before the page is left without saving.
// Adding or removing a row counts as a change. Saving (submitting it) ends
// that; so does a successful htmx save of it.
// Forms marked data-no-unsaved-warning, and forms without editable fields
// (buttons only), never ask.
(() => {
  const watched = (form) =>
    form && form.matches && form.matches("form[method=post]:not([data-no-unsaved-warning])");

  function markDirty(event) {
    const el = event.target;
    if (!el || !el.form || el.type === "hidden" || el.type === "submit") {
      return;
    }
    if (watched(el.form)) {
      el.form.dataset.unsaved = "1";
    }
  }

  document.addEventListener("input", markDirty);
  document.addEventListener("change", markDirty);
  document.addEventListener("submit", (event) => {
    if (!event.defaultPrevented && watched(event.target)) {
      event.target.dataset.unsaved = "";
    }
  });
  // A pane saved by htmx (hx-post on the form itself; not a button inside it
  // such as "Test connection") is clean once the save succeeded.
  document.addEventListener("htmx:afterRequest", (event) => {
    const form = event.detail && event.detail.elt;
    const verb = event.detail.requestConfig && event.detail.requestConfig.verb;
    if (form && form.tagName === "FORM" && event.detail.successful && verb && verb !== "get") {
      form.dataset.unsaved = "";
    }
  });
  // Adding or removing a row (a button inside the form that swaps rows in or
  // out with htmx) is a change too, before anything is typed into the row.
  document.addEventListener("htmx:beforeRequest", (event) => {
    const el = event.detail && event.detail.elt;
    const swap = el && el.getAttribute && el.getAttribute("hx-swap");
    const form = el && el.closest && el.closest("form");
    if ((swap === "beforeend" || swap === "delete") && el.tagName === "BUTTON" && watched(form)) {
      form.dataset.unsaved = "1";
    }
  });
  window.addEventListener("beforeunload", (event) => {
    if (document.querySelector("form[data-unsaved='1']")) {
      event.preventDefault();
      event.returnValue = "";
    }
  });
})();
