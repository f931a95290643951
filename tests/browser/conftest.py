"""Playwright on the system Chromium against pytest-django's live server. Never downloads a browser."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("FIREBREAK_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


class Page:
    """A browser tab that records CSP violations and console errors, and saves screenshots on demand."""

    def __init__(self, context, base_url: str) -> None:
        self.page = context.new_page()
        self.base_url = base_url
        self.problems: list[str] = []
        self.page.on("console", self._console)
        self.page.on("response", self._response)
        self.page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        self.page.add_init_script(
            "document.addEventListener('securitypolicyviolation', e => "
            "console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI));"
        )

    def _console(self, message) -> None:
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.problems.append(message.text)  # failed loads are reported with their URL by _response

    def _response(self, response) -> None:
        if response.status >= 400 and not response.url.endswith("/favicon.ico"):
            self.problems.append(f"{response.status} {response.url}")

    def goto(self, path: str):
        return self.page.goto(self.base_url + path)

    def login(self, username: str, password: str) -> None:
        self.goto("/admin/login/")
        self.page.fill("#id_username", username)
        self.page.fill("#id_password", password)
        self.page.click("input[type=submit]")
        self.page.wait_for_url(self.base_url + "/admin/")

    def select2(self, container: str, text: str) -> None:
        """Pick `text` in the admin's autocomplete (select2) widget inside `container`."""
        self.page.locator(f"{container} .select2-selection").first.click()
        self.page.locator(".select2-container--open .select2-search__field").fill(text)
        self.page.locator(".select2-results__option", has_text=text).first.click()

    def shot(self, name: str, *, full_page: bool = True) -> None:
        if os.environ.get("FIREBREAK_SCREENSHOTS") == "1":
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


@pytest.fixture
def open_page(monkeypatch, live_server):
    """Tabs in a fresh Chromium, stopped before the live server and the database are torn down.

    Playwright's sync API runs an event loop in this thread; the test's ORM calls are still synchronous, so
    DJANGO_ALLOW_ASYNC_UNSAFE is set for this test only (monkeypatch comes first, so it is undone last, after
    the database flush). `check --deploy` refuses the variable (tests/security/test_headers.py).
    """
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright for Python is not installed")
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        pytest.skip(f"no Chromium at {CHROMIUM} (set FIREBREAK_CHROMIUM)")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    playwright = sync_api.sync_playwright().start()
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])

    def factory() -> Page:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        return Page(context, live_server.url)

    try:
        yield factory
    finally:
        browser.close()
        playwright.stop()
