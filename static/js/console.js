// Behaviour the console's pages share, kept out of the HTML so that the
// Content-Security-Policy can forbid inline script (opsconsole/security.py).

// <form data-confirm="Delete X?">: ask before submitting.
document.addEventListener("submit", (event) => {
  const message = event.target.dataset && event.target.dataset.confirm;
  if (message && !window.confirm(message)) {
    event.preventDefault();
  }
});
