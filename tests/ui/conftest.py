"""A real `gnomon serve` and Debian's Chromium driven by Playwright; screenshots on failure."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from tests.server import Server

CHROMIUM = os.environ.get("GNOMON_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="package")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One gnomon on SQLite for the browser tests (the API tests cover both backends)."""
    srv = Server(tmp_path_factory.mktemp("gnomon-ui")).start()
    yield srv
    srv.stop()


@pytest.fixture
def api(ui_server: Server) -> Iterator[httpx.Client]:
    with ui_server.client() as c:
        yield c


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs it (scripts/browser.sh)")
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    b = playwright.chromium.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
    )
    yield b
    b.close()


@pytest.fixture
def context(browser: Browser, ui_server: Server) -> Iterator[BrowserContext]:
    ctx = browser.new_context(
        base_url=ui_server.url, viewport={"width": 1280, "height": 800}, timezone_id="UTC"
    )
    ctx.set_default_timeout(10_000)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh page; JavaScript errors on it fail the test, and a failed test leaves a
    screenshot in tests/artifacts/."""
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    elif errors:
        pytest.fail(f"JavaScript errors on the page: {errors}")


@pytest.fixture
def signed_in(page: Page, ui_server: Server) -> Page:
    """The page, signed in as admin (the token kept for this tab, as the sign-in form does)."""
    page.add_init_script(f"sessionStorage.setItem('gnomon.token', {ui_server.token!r})")
    return page


def keep_screenshot(page: Page, name: str) -> Path:
    """Save a screenshot to tests/artifacts/; with GNOMON_UPDATE_SCREENSHOT=1 also to docs/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    if os.environ.get("GNOMON_UPDATE_SCREENSHOT") == "1":
        docs = Path(__file__).resolve().parents[2] / "docs"
        docs.mkdir(exist_ok=True)
        shutil.copyfile(path, docs / name)
    return path
