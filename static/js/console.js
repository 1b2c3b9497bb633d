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

// A link to a task's event line (/director/tasks/7/#event-12, from an
// installation's failure box): mark the line that starts with that number in
// the event log, open the <details> around it and bring it into view.
document.addEventListener("DOMContentLoaded", () => {
  const match = /^#event-(\d+)$/.exec(window.location.hash);
  const pre = document.getElementById("task-lines");
  if (!match || !pre || document.getElementById(`event-${match[1]}`)) {
    return;
  }
  const text = pre.textContent;
  const start = text.startsWith(`${match[1]} `)
    ? 0
    : text.indexOf(`\n${match[1]} `) + 1;
  if (start === 0 && !text.startsWith(`${match[1]} `)) {
    return;
  }
  let end = text.indexOf("\n", start);
  end = end === -1 ? text.length : end;
  const line = document.createElement("span");
  line.id = `event-${match[1]}`;
  line.className = "target-line";
  line.textContent = text.slice(start, end);
  pre.replaceChildren(text.slice(0, start), line, text.slice(end));
  for (let d = pre.closest("details"); d; d = d.parentElement.closest("details")) {
    d.open = true;
  }
  line.scrollIntoView({ block: "center" });
});

// The installation timeline scrolls sideways in a narrow window (its labels
// never shrink): where the operator scrolled it stays when the live view's
// poll replaces the picture.
(() => {
  const kept = new Map();
  document.addEventListener(
    "scroll",
    (event) => {
      const el = event.target;
      if (el.classList && el.classList.contains("timeline-scroll") && el.id) {
        kept.set(el.id, el.scrollLeft);
      }
    },
    true,
  );
  const restore = () => {
    kept.forEach((left, id) => {
      const el = document.getElementById(id);
      if (el && el.scrollLeft !== left) {
        el.scrollLeft = left;
      }
    });
  };
  document.addEventListener("htmx:oobAfterSwap", restore);
  document.addEventListener("htmx:afterSettle", restore);
})();
