"""``prepaid run [--config PATH]``: serve SIP, RTP and HTTP with the store.

With ``[payments] require_all = true`` it refuses to start (exit 2) while a payment method a profile
names lacks credentials in the secrets file, naming each as ``file:key: reason``; without it the node
starts and the web side logs each such method once and leaves it off the page.
"""

from __future__ import annotations

import sys

from ..paysecrets import check_payment_secrets, refusal
from .db import add_config_argument, config_of


def register(sub) -> None:
    p = sub.add_parser("run", help="serve SIP, RTP and HTTP")
    add_config_argument(p)
    p.set_defaults(func=run)


def run(args) -> int:
    config = config_of(args)
    if config is None:
        return 2
    refused = refusal(config, check_payment_secrets(config))
    if refused:
        for line in refused:
            print(line, file=sys.stderr)
        return 2
    from twisted.internet import reactor

    from ..app import serve
    return serve(config, reactor)
