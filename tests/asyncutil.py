"""Run a coroutine to its end from synchronous test code, whatever runs in this thread.

Playwright's sync API (the browser tests' session fixture) keeps an event loop
running in the main thread for the rest of the session, so ``asyncio.run`` there
fails with "cannot be called from a running event loop" in any later test. A
coroutine run in a thread of its own has a loop of its own.
"""

import asyncio
import threading


def run_apart(coroutine, timeout: float = 60):
    """``asyncio.run(coroutine)`` in a new thread; its result, or its exception raised here."""
    outcome: dict = {}

    def target():
        try:
            outcome["value"] = asyncio.run(coroutine)
        except BaseException as exc:  # handed to the caller, as asyncio.run would raise it
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"the coroutine did not finish within {timeout:.0f} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")
