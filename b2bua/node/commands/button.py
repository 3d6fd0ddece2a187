"""``prepaid button --profile P``: the HTML snippet that embeds a profile's top-up page."""

from __future__ import annotations

from webhook.embed import snippet

from .db import CommandError, add_config_argument, command, profile_of


def register(sub) -> None:
    p = sub.add_parser("button", help="print the iframe snippet for a profile's top-up page")
    add_config_argument(p)
    p.add_argument("--profile", required=True)
    p.add_argument("--lang", choices=("de", "en"), default=None, help="page language (default: the profile's)")
    p.set_defaults(func=command(button))


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
