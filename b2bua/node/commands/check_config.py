"""``prepaid check-config PATH``: every problem as ``file:key: reason`` (exit 2), or a summary (exit 0).

The secrets file (``$PREPAID_SECRETS``, else ``[payments] secrets_file``) is checked too: a merchant
account a profile names without complete credentials is a problem, whatever ``[payments] require_all``
says (without it ``prepaid run`` starts, with that method off the page).
"""

from __future__ import annotations

import sys

from ..config import load_config
from ..paysecrets import check_payment_secrets
from ..schema import ConfigInvalid


def register(sub) -> None:
    p = sub.add_parser("check-config", help="validate a config file and its secrets file, and say what it would serve")
    p.add_argument("path", help="the TOML file")
    p.set_defaults(func=check_config)


def check_config(args) -> int:
    try:
        config = load_config(args.path)
    except ConfigInvalid as exc:
        return _problems(args.path, exc.problems)
    secrets = check_payment_secrets(config)
    if secrets.problems:
        note = ""
        if secrets.off:
            note = (f"payment methods without credentials: {', '.join(f'{o.profile}/{o.method}' for o in secrets.off)}"
                    f" ({'prepaid run refuses to start' if config.payments.require_all else 'off on the top-up page'})")
        return _problems(args.path, secrets.problems, note)
    print(config.summary())
    if secrets.file:
        print(f"  secrets: every payment method the profiles name has credentials in\n    {secrets.file}")
    return 0


def _problems(path: str, problems, note: str = "") -> int:
    for problem in problems:
        print(problem, file=sys.stderr)
    if note:
        print(note, file=sys.stderr)
    print(f"{path}: {len(problems)} problem(s)", file=sys.stderr)
    return 2
