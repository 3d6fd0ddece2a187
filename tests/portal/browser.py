"""The portal in a real browser: a real ``prepaid run``, logins made with the real CLI, headless Chromium.

    from tests.portal.browser import portal_browser          # the fixture (import it into the test module)

    def test_something(portal_browser):
        portal_browser.add_user("anna", "provider", profiles="demo")
        portal_browser.login("anna")
        portal_browser.get("/p/demo/customers")
        portal_browser.shot("customers")       # 1280 px and 390 px screenshots; no sideways scrolling at 390 px

Screenshots land in the test's tmp folder (``shots/<name>-1280.png``, ``-390.png``).

A module whose tests may share one node and one browser (the walkthroughs) uses :func:`running_portal`
in a module-scoped fixture and points ``shots`` at each test's own folder; it can download files
(:meth:`PortalBrowser.download`), read the clipboard (:meth:`PortalBrowser.clipboard`) and put call
records into the node's store (:meth:`PortalBrowser.add_calls`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest

from tests.sipp.harness import free_port
from tests.sipp.node import Node, start_node
from tests.webhook.conftest import SECRETS


def http_status(url: str, headers: dict[str, str] | None = None) -> int:
    """The HTTP status of a GET of ``url`` (an error status too, not an exception)."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
PASSWORD = "correct horse battery"
#: the widths every page is looked at: a laptop and a phone
WIDE_PX = 1280
PHONE_PX = 390


#: what chromedriver says of a node whose document a navigation has replaced
NODE_GONE = "does not belong to the document"
#: the menu entries whose words wrap onto more than one line (a phone's menu scrolls instead)
BROKEN_MENU_ENTRIES = """
return Array.from(document.querySelectorAll('nav.menu a')).filter(function (a) {
  var range = document.createRange(); range.selectNodeContents(a);
  return range.getClientRects().length > 1;
}).map(function (a) { return a.textContent; });
"""


def call_record(caller: str, *, ago_s: int, talked_s: int = 0, charge_cents: int = 0,
                received: str | None = None):
    """A call to the demo profile's service number ``ago_s`` seconds ago, as a node records it: ``talked_s``
    seconds with the agent, charged ``charge_cents``, or (``talked_s`` 0) refused for no credit;
    ``received`` is the caller's number as the INVITE gave it (default: ``caller``)."""
    from billing.db.rows import CallRecord
    invite_ms = int(time.time() * 1000) - ago_s * 1000
    talked = talked_s > 0
    agent = "sip:agent@127.0.0.1:5070"
    return CallRecord(call_id=f"portal-{caller}-{invite_ms}", profile="demo", service_number="+493012345678",
                      caller=caller, identity_source="from", privacy=False, caller_class="mobile",
                      agent_tried=agent if talked else None, agent_answered=agent if talked else None,
                      invite_ms=invite_ms, answer_ms=invite_ms + 3000 if talked else None,
                      end_ms=invite_ms + 3000 + talked_s * 1000 if talked else invite_ms + 4000,
                      end_reason="caller_hangup" if talked else "no_credit", a_status=200 if talked else 402,
                      b_status=200 if talked else None, billed_s=talked_s, charge_cents=charge_cents,
                      caller_received=received or caller)


def ready_ports(node: Node) -> dict:
    """The ports of the node's ready line (``{"udp": ..., "http": ..., "portal": ...}``)."""
    match = re.search(r'\{"ready": true.*\}', "".join(node.output))
    assert match, "no ready line"
    return json.loads(match.group(0))["ports"]


def chromium(profile_dir: Path):
    """A headless Chromium driven by chromedriver (skips the test where they are missing)."""
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.skip("needs Debian chromium and chromium-driver")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--hide-scrollbars", f"--user-data-dir={profile_dir}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    return driver


@dataclass
class PortalBrowser:
    """A running node, its portal's URL, a browser, and where screenshots go."""

    node: Node
    driver: object
    base: str
    public: str
    shots: Path
    taken: list = field(default_factory=list)
    downloads: Path | None = None     # where the browser saves downloads (None: it does not)

    def prepaid(self, *args: str):
        return self.node.prepaid(*args)

    def add_user(self, name: str, role: str, *, profiles: str = "", language: str = "de",
                 password: str = PASSWORD) -> None:
        """A login made with ``prepaid user add`` (the real CLI, on the node's store)."""
        secret = self.node.workdir / f"pw-{name}"
        secret.write_text(password + "\n")
        args = ["user", "add", name, "--role", role, "--language", language, "--password-file", str(secret)]
        if profiles:
            args += ["--profiles", profiles]
        done = self.prepaid(*args)
        assert done.returncode == 0, done.stderr

    def get(self, path: str) -> None:
        self.driver.get(self.base + path)

    def login(self, name: str, password: str = PASSWORD) -> None:
        """Log in through the login form; the browser is then on the user's first page."""
        from selenium.webdriver.common.by import By
        self.get("/")
        self.driver.find_element(By.ID, "name").send_keys(name)
        self.driver.find_element(By.ID, "password").send_keys(password)
        self.submit(By.ID, "login")

    def submit(self, by: str, what: str, timeout_s: float = 10) -> None:
        """Click the button found by (``by``, ``what``) and wait until the next page has loaded."""
        from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait
        old = self.driver.find_element(By.TAG_NAME, "html")

        def replaced(error: WebDriverException) -> bool:
            # while a navigation replaces the document chromedriver reports its nodes either stale or as
            # "not belonging to the document"; both say the old page is gone
            return isinstance(error, StaleElementReferenceException) or NODE_GONE in str(error)
        try:
            self.driver.find_element(by, what).click()
        except WebDriverException as exc:
            if not replaced(exc):
                raise

        def gone(_driver) -> bool:
            try:
                old.is_enabled()
            except WebDriverException as exc:
                if replaced(exc):
                    return True
                raise
            return False
        WebDriverWait(self.driver, timeout_s).until(gone, f"clicking {what} led to no other page")
        WebDriverWait(self.driver, timeout_s).until(
            lambda driver: driver.execute_script("return document.readyState") == "complete",
            f"the page after clicking {what} did not finish loading")

    def logout(self) -> None:
        from selenium.webdriver.common.by import By
        self.submit(By.CSS_SELECTOR, "form.logout button")

    def text(self, css: str) -> str:
        from selenium.webdriver.common.by import By
        return self.driver.find_element(By.CSS_SELECTOR, css).text

    def fill(self, fields: dict[str, str]) -> None:
        """Type into the inputs named by ``fields``' keys (cleared first)."""
        from selenium.webdriver.common.by import By
        for name, value in fields.items():
            element = self.driver.find_element(By.NAME, name)
            element.clear()
            element.send_keys(value)

    def download(self, link_text: str, timeout_s: float = 10) -> Path:
        """Click the link named ``link_text`` and wait for the file the browser saves; its path."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait
        assert self.downloads is not None, "this browser saves no downloads"
        for old in self.downloads.iterdir():
            old.unlink()
        self.driver.find_element(By.LINK_TEXT, link_text).click()

        def saved(_driver):
            files = [f for f in self.downloads.iterdir() if not f.name.endswith(".crdownload")]
            return files[0] if files else False
        return WebDriverWait(self.driver, timeout_s).until(saved)

    def wait_until(self, condition, message: str, timeout_s: float = 5) -> None:
        """Wait (bounded) until ``condition()`` holds, as a script on the page changes it."""
        from selenium.webdriver.support.ui import WebDriverWait
        WebDriverWait(self.driver, timeout_s).until(lambda _driver: condition(), message)

    def clipboard(self) -> str:
        """What the page's script put on the clipboard (the portal's origin may read it)."""
        return self.driver.execute_async_script(
            "var done = arguments[arguments.length - 1];"
            "navigator.clipboard.readText().then(done, function (e) { done('clipboard refused: ' + e); });")

    def add_calls(self, *records) -> None:
        """Call records (``billing.db.rows.CallRecord``) written into the node's store by the store's own
        ``billing.db.calls.add_many``, as a node writes them when a call ends."""
        import sqlalchemy as sa

        from billing.db import calls
        engine = sa.create_engine(f"sqlite:///{self.node.workdir / 'prepaid.db'}")
        try:
            with engine.begin() as conn:
                calls.add_many(conn, tuple(records))
        finally:
            engine.dispose()

    def shot(self, name: str) -> tuple[Path, Path]:
        """Screenshots of the page at 1280 px and at 390 px; asserts that at 390 px it does not scroll sideways
        and no menu entry wraps, and that since the last shot the browser loaded every resource the pages asked
        for (stylesheet, script, icon) and blocked nothing by their Content-Security-Policy (an inline style or
        script, a frame from elsewhere)."""
        refused = [text for text in (entry["message"] for entry in self.driver.get_log("browser"))
                   if "Content Security Policy" in text or "Failed to load resource" in text and
                   ("/static/" in text or "favicon" in text)]
        assert refused == [], f"{name}: parts of the page missing or blocked by the CSP: {refused}"
        paths = []
        for width, height in ((WIDE_PX, 900), (PHONE_PX, 844)):
            self.driver.set_window_size(width, height)
            inner = self.driver.execute_script("return window.innerWidth")
            scroll = self.driver.execute_script("return document.documentElement.scrollWidth")
            if width == PHONE_PX:
                assert scroll <= inner, f"{name}: {scroll} px wide in a {inner} px window (sideways scrolling)"
                broken = self.driver.execute_script(BROKEN_MENU_ENTRIES)
                assert broken == [], f"{name}: menu entries broken over lines at {width} px: {broken}"
            path = self.shots / f"{name}-{width}.png"
            self.driver.save_screenshot(str(path))
            paths.append(path)
        self.driver.set_window_size(WIDE_PX, 900)
        self.taken.extend(paths)
        return paths[0], paths[1]


@contextlib.contextmanager
def running_portal(workdir: Path, *, profile: dict[str, str] | None = None) -> Iterator[PortalBrowser]:
    """A ``prepaid run`` in ``workdir`` with its listeners on free ports (``[http] public_url`` its real
    public port, the demo profile framed by the portal itself, ``profile`` keys overriding the demo
    profile's), and a headless Chromium at 1280 px that saves downloads and may use the clipboard."""
    driver = chromium(workdir / "chromium-profile")
    http_port, portal_port = free_port(), free_port()
    base, public = f"http://127.0.0.1:{portal_port}", f"http://127.0.0.1:{http_port}"
    keys = {"frame_ancestors": json.dumps([base]), **(profile or {})}
    secrets = workdir / "secrets.toml"       # credentials of no real provider: the page offers every method
    secrets.write_text(SECRETS)
    try:
        node = start_node(workdir, agents=["sip:agent@127.0.0.1:5070"], http_port=http_port, profile=keys,
                          sections={"http": {"public_url": json.dumps(public)}, "portal": {"port": str(portal_port)},
                                    "payments": {"secrets_file": json.dumps(str(secrets))}})
    except BaseException:
        driver.quit()
        raise
    node.follow()            # a long walk logs a lot: read it on a thread, never let the pipe fill
    try:
        ports = ready_ports(node)
        assert (ports["portal"], ports["http"]) == (portal_port, http_port), ports
        shots, downloads = workdir / "shots", workdir / "downloads"
        shots.mkdir()
        downloads.mkdir()
        driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
        driver.execute_cdp_cmd("Browser.grantPermissions", {"origin": base, "permissions": [
            "clipboardReadWrite", "clipboardSanitizedWrite"]})
        driver.set_window_size(WIDE_PX, 900)
        yield PortalBrowser(node, driver, base, public, shots, downloads=downloads)
    finally:
        driver.quit()
        node.stop()


@pytest.fixture
def portal_browser(tmp_path):
    """A ``prepaid run`` with its portal on a free port, and a headless Chromium at 1280 px."""
    with running_portal(tmp_path) as browser:
        yield browser
