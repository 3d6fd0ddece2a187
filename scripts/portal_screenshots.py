#!/usr/bin/env python3
"""Makes the README's portal screenshots (``docs/portal/*.png``) again, from the real thing.

    .venv/bin/python scripts/portal_screenshots.py [--out docs/portal] [--language en|de]

A ``prepaid run`` with the example config on a temporary SQLite store and free ports; callers topped
up with ``prepaid topup``, a provider's login made with ``prepaid user add``, a few calls written by
the store's own functions (one refused: its caller topped up a number with a typo); then headless
Chromium (Debian's chromium and chromium-driver, as the browser tests use) logs in as the provider
and photographs, 1280 px wide:

- ``customers.png``: the customers page;
- ``calls-hint.png``: the EVN filtered to calls refused for no credit, with the "mistyped number?" hint;
- ``new-transaction-bonus.png``: a manual top-up's confirmation, its bonus shown before booking.
"""

from __future__ import annotations

import argparse
import base64
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.portal.browser import PortalBrowser, call_record, running_portal  # noqa: E402

#: (number, amount in EUR) topped up with ``prepaid topup``; the last is the caller's typo
TOPUPS = (("+4915112345678", "20"), ("0170 2345678", "50"), ("+49 30 1234567", "10"), ("0160 98765432", "20"),
          ("+4917612345678", "10"), ("0151 22223333", "50"), ("+4917698761234", "10"))
#: (caller, seconds ago, talked s, charge in cents); talked 0: refused for no credit
CALLS = (("+4915112345678", 7_200, 540, 2241), ("+491702345678", 5_400, 180, 747),
         ("+49301234567", 3_600, 300, 995), ("+4917698762134", 120, 0, 0))
WIDTH_PX = 1280
MAX_HEIGHT_PX = 1400


def save(browser: PortalBrowser, path: Path) -> None:
    """The page at 1280 px, as tall as its content (at most :data:`MAX_HEIGHT_PX`)."""
    height = browser.driver.execute_script("return document.documentElement.scrollHeight")
    shot = browser.driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": WIDTH_PX, "height": min(int(height), MAX_HEIGHT_PX), "scale": 1}})
    path.write_bytes(base64.b64decode(shot["data"]))
    print(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "portal", help="where the PNGs go")
    parser.add_argument("--language", choices=("en", "de"), default="en", help="the provider's language")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="portal-shots-") as tmp, running_portal(Path(tmp)) as b:
        b.add_user("beratung", "provider", profiles="demo", language=args.language)
        for number, amount in TOPUPS:
            b.node.topup(number, amount)
        b.add_calls(*(call_record(caller, ago_s=ago_s, talked_s=talked_s, charge_cents=cents,
                                  received=caller.replace("+49", "0"))
                      for caller, ago_s, talked_s, cents in CALLS))
        b.login("beratung")
        b.get("/p/demo/customers?sort=last_topup&dir=desc")
        save(b, args.out / "customers.png")
        b.get("/p/demo/calls?outcome=no_credit")
        save(b, args.out / "calls-hint.png")
        b.get("/p/demo/transactions/new")
        b.fill({"number": "0151 12345678", "amount": "20"})
        b.submit("css selector", "main form button[type=submit]")
        save(b, args.out / "new-transaction-bonus.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
