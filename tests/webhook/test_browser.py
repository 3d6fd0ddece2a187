"""The whole top-up page in headless Chromium (Debian `chromium` + `chromium-driver`, pip `selenium`)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.fixture
def browser(tmp_path):
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.skip("needs Debian chromium and chromium-driver")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def balance(db: str, number: str) -> int | None:
    import sqlalchemy as sa
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        row = conn.execute(sa.text("select balance_cents from accounts where profile='demo' and number=:n"),
                           {"n": number}).first()
    engine.dispose()
    return row[0] if row else None


def test_framed_page_paypal_round_trip_credits_with_bonus(served, browser):
    """From a partner origin: fill the framed form, confirm, PayPal approves, back: 20 EUR + 3 EUR credited."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait
    urls, db = served
    wait = WebDriverWait(browser, 20)
    browser.get(urls["good"] + "/")
    wait.until(ec.frame_to_be_available_and_switch_to_it((By.ID, "topup")))
    wait.until(ec.presence_of_element_located((By.ID, "number"))).send_keys("0151 12345678")
    browser.find_element(By.CSS_SELECTOR, 'input[name="amount"][value="2000"]').click()
    browser.find_element(By.CSS_SELECTOR, 'input[name="method"][value="paypal"]').click()
    browser.find_element(By.ID, "next").click()
    national = wait.until(ec.presence_of_element_located((By.ID, "national")))
    assert national.text == "01511 2345678"
    browser.find_element(By.ID, "pay").click()
    browser.switch_to.default_content()
    status = wait.until(ec.presence_of_element_located((By.ID, "status")))
    assert browser.current_url.startswith(urls["base_url"] + "/topup/demo/return/")
    assert "credit has arrived" in status.text
    assert browser.find_element(By.ID, "credited").text == "EUR 23.00"
    assert balance(db, "+4915112345678") == 2300


def test_site_not_listed_cannot_frame_the_page(served, browser):
    """An origin that is not in frame_ancestors gets a blocked frame: the form never loads inside it."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait
    urls, _ = served
    browser.get(urls["evil"] + "/")
    WebDriverWait(browser, 20).until(ec.frame_to_be_available_and_switch_to_it((By.ID, "topup")))
    assert browser.find_elements(By.ID, "number") == []
    browser.switch_to.default_content()
    browser.get(urls["good"] + "/")  # the same page from the listed origin does load
    WebDriverWait(browser, 20).until(ec.frame_to_be_available_and_switch_to_it((By.ID, "topup")))
    assert WebDriverWait(browser, 20).until(ec.presence_of_element_located((By.ID, "number")))
