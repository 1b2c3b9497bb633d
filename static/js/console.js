// Behaviour the console's pages share, kept out of the HTML so that the
// Content-Security-Policy can forbid inline script (opsconsole/security.py).

// <form data-confirm="Delete X?">: ask before submitting.
document.addEventListener("submit", (event) => {
  const message = event.target.dataset && event.target.dataset.confirm;
  if (message && !window.confirm(message)) {
    event.preventDefault();
  }
});

// <pre data-follow id=...>: a growing log stays scrolled to its end, unless the
// operator scrolled up to read; scrolling back to the end (or "Follow the log")
// follows again. Whether it follows survives htmx replacing the element.
(() => {
  const following = new Map();
  const atEnd = (el) => el.scrollHeight - el.scrollTop - el.clientHeight < 24;

  function show(el) {
    const on = following.get(el.id) !== false;
    const state = document.getElementById("log-follow-state");
    if (state) {
      state.textContent = on
        ? "Following the end of the log"
        : "Paused: you scrolled up. Scroll to the end to follow again.";
    }
    const button = document.querySelector(`button[data-follow-target="${el.id}"]`);
    if (button) {
      button.hidden = on;
    }
  }

  function follow(el) {
    if (!el.dataset.followBound) {
      el.dataset.followBound = "1";
      el.addEventListener("scroll", () => {
        following.set(el.id, atEnd(el));
        show(el);
      });
    }
    if (following.get(el.id) !== false) {
      el.scrollTop = el.scrollHeight;
    }
    show(el);
  }

  function followAll() {
    document.querySelectorAll("pre[data-follow]").forEach(follow);
  }

  document.addEventListener("DOMContentLoaded", followAll);
  document.addEventListener("htmx:oobAfterSwap", followAll);
  document.addEventListener("htmx:afterSettle", followAll);
  document.addEventListener("click", (event) => {
    const id = event.target.dataset && event.target.dataset.followTarget;
    const el = id && document.getElementById(id);
    if (el) {
      following.set(id, true);
      follow(el);
    }
  });
})();

// A link to a line inside a closed <details> (a task's event line, #event-12):
// open it and bring the line into view.
document.addEventListener("DOMContentLoaded", () => {
  const id = window.location.hash.slice(1);
  const target = id && document.getElementById(id);
  if (!target) {
    return;
  }
  for (let d = target.closest("details"); d; d = d.parentElement.closest("details")) {
    d.open = true;
  }
  target.scrollIntoView({ block: "center" });
});
