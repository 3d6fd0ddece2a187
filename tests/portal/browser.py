"""The portal in a real browser: a real ``prepaid run``, logins made with the real CLI, headless Chromium.

    from tests.portal.browser import portal_browser          # the fixture (import it into the test module)

    def test_something(portal_browser):
        portal_browser.add_user("anna", "provider", profiles="demo")
        portal_browser.login("anna")
        portal_browser.get("/p/demo/customers")
        portal_browser.shot("customers")       # 1280 px and 390 px screenshots; no sideways scrolling at 390 px

Screenshots land in the test's tmp folder (``shots/<name>-1280.png``, ``-390.png``).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.sipp.node import Node, start_node

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
PASSWORD = "correct horse battery"
#: the widths every page is looked at: a laptop and a phone
WIDE_PX = 1280
PHONE_PX = 390


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
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec
        from selenium.webdriver.support.ui import WebDriverWait
        old = self.driver.find_element(By.TAG_NAME, "html")
        self.driver.find_element(by, what).click()
        WebDriverWait(self.driver, timeout_s).until(ec.staleness_of(old))

    def logout(self) -> None:
        from selenium.webdriver.common.by import By
        self.submit(By.CSS_SELECTOR, "form.logout button")

    def text(self, css: str) -> str:
        from selenium.webdriver.common.by import By
        return self.driver.find_element(By.CSS_SELECTOR, css).text

    def shot(self, name: str) -> tuple[Path, Path]:
        """Screenshots of the page at 1280 px and at 390 px; asserts that it does not scroll sideways at 390 px."""
        paths = []
        for width, height in ((WIDE_PX, 900), (PHONE_PX, 844)):
            self.driver.set_window_size(width, height)
            inner = self.driver.execute_script("return window.innerWidth")
            scroll = self.driver.execute_script("return document.documentElement.scrollWidth")
            if width == PHONE_PX:
                assert scroll <= inner, f"{name}: {scroll} px wide in a {inner} px window (sideways scrolling)"
            path = self.shots / f"{name}-{width}.png"
            self.driver.save_screenshot(str(path))
            paths.append(path)
        self.driver.set_window_size(WIDE_PX, 900)
        self.taken.extend(paths)
        return paths[0], paths[1]


@pytest.fixture
def portal_browser(tmp_path):
    """A ``prepaid run`` with its portal on a free port, and a headless Chromium at 1280 px."""
    driver = chromium(tmp_path / "chromium-profile")
    node = start_node(tmp_path, agents=["sip:agent@127.0.0.1:5070"])
    try:
        ports = ready_ports(node)
        shots = tmp_path / "shots"
        shots.mkdir()
        driver.set_window_size(WIDE_PX, 900)
        yield PortalBrowser(node, driver, f"http://127.0.0.1:{ports['portal']}", f"http://127.0.0.1:{ports['http']}",
                            shots)
    finally:
        driver.quit()
        node.stop()
