"""Debian's chromium driven by Playwright (sync API), headless, for the UI test.

``playwright install`` is never run: the browser is the system's ``chromium`` package. Requests to anything but
127.0.0.1 are aborted in the browser (the Prefect UI would otherwise try to reach its analytics service).
On a failed step the page's screenshot and HTML are saved and their paths put into the assertion message.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support.require import missing

__all__ = ["CHROMIUM_ARGS", "browser_page", "chromium_path", "evidence_on_failure", "save_evidence"]

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
LOCAL = ("http://127.0.0.1:", "http://127.0.0.1/")


def chromium_path() -> str:
    """The system chromium and the Playwright package; skipped when absent, a failure under CI=true."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing("the playwright Python package (pip install -r requirements-dev.txt)")
    found = next((p for p in ("/usr/bin/chromium", shutil.which("chromium")) if p and os.access(p, os.X_OK)), None)
    if found is None:
        missing("chromium (apt-get install chromium; `playwright install` is not used)")
    return str(found)


@contextmanager
def browser_page(executable: str, default_timeout_ms: float = 30_000) -> Iterator[Any]:
    """A fresh headless chromium with one page; only 127.0.0.1 is reachable from it. Closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(LOCAL)
                          else route.abort())
            context.set_default_timeout(default_timeout_ms)
            yield context.new_page()
        finally:
            browser.close()


def save_evidence(page: Any, directory: Path, name: str) -> str:
    """Save a screenshot and the HTML of ``page``; a line naming both files."""
    directory.mkdir(parents=True, exist_ok=True)
    png, html = directory / f"{name}.png", directory / f"{name}.html"
    notes = []
    try:
        page.screenshot(path=str(png), full_page=True)
    except Exception as exc:  # noqa: BLE001 - the page may be gone; say so instead
        notes.append(f"no screenshot: {exc}")
    try:
        html.write_text(page.content())
    except Exception as exc:  # noqa: BLE001
        notes.append(f"no HTML: {exc}")
    return f"screenshot {png}, HTML {html}, page {getattr(page, 'url', '?')}" + (f" ({'; '.join(notes)})"
                                                                             if notes else "")


@contextmanager
def evidence_on_failure(page: Any, directory: Path, step: str,
                        context: Callable[[], str] | None = None) -> Iterator[None]:
    """Turn any failure inside the block into an AssertionError naming the step, the saved evidence and
    whatever ``context`` says (e.g. the run's state and the worker's log)."""
    try:
        yield
    except Exception as exc:
        where = save_evidence(page, directory, step.replace(" ", "-"))
        more = ""
        if context is not None:
            try:
                more = "\n" + context()
            except Exception as ctx_exc:  # noqa: BLE001 - the evidence must not hide the failure
                more = f"\n(no context: {ctx_exc})"
        raise AssertionError(f"UI step '{step}' failed: {exc}\n{where}{more}") from exc
