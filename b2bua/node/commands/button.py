"""``prepaid button --profile P``: the HTML snippet that embeds a profile's top-up page."""

from __future__ import annotations

import html

from .db import CommandError, add_config_argument, command, profile_of


def register(sub) -> None:
    p = sub.add_parser("button", help="print the iframe snippet for a profile's top-up page")
    add_config_argument(p)
    p.add_argument("--profile", required=True)
    p.add_argument("--lang", choices=("de", "en"), default=None, help="page language (default: the profile's)")
    p.set_defaults(func=command(button))


def topup_url(public_url: str, button_id: str, lang: str) -> str:
    """The address of a profile's top-up page, as browsers reach it."""
    return f"{public_url.rstrip('/')}/topup/{button_id}?lang={lang}"


def snippet(public_url: str, button_id: str, lang: str, title: str = "Top-up") -> str:
    """The iframe that embeds the top-up page (``prepaid button`` prints it, the portal shows it)."""
    src = topup_url(public_url, button_id, lang)
    return (f'<iframe src="{html.escape(src)}" title="{html.escape(title)}" width="420" height="560" '
            f'style="border:0" loading="lazy" referrerpolicy="no-referrer"></iframe>')


def button(args, config) -> int:
    profile = profile_of(config, args.profile)
    if not config.http.public_url:
        raise CommandError("[http] public_url is not set: the snippet needs the address browsers reach us at")
    print(snippet(config.http.public_url, profile.button, args.lang or profile.language,
                  "Guthaben aufladen" if (args.lang or profile.language) == "de" else "Top up credit"))
    if not profile.frame_ancestors:
        print(f"note: profile {profile.name} lists no frame_ancestors; browsers will refuse to frame the page",
              file=__import__("sys").stderr)
    return 0
