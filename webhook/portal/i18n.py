"""The words of the portal's server and layout, German and English; :func:`strings` adds the pages' own."""

from __future__ import annotations

from typing import Mapping

STRINGS: dict[str, dict[str, str]] = {
    "de": {
        "portal.name": "Prepaid-Portal",
        "portal.area": "Zahlung › Prepaid",
        "portal.login.title": "Anmelden",
        "portal.login.user": "Benutzername",
        "portal.login.password": "Passwort",
        "portal.login.submit": "Anmelden",
        "portal.login.wrong": "Benutzername oder Passwort ist falsch.",
        "portal.login.locked": "Nach zu vielen Fehlversuchen ist die Anmeldung für eine Weile gesperrt.",
        "portal.logout": "Abmelden",
        "portal.logged_out": "Sie sind abgemeldet.",
        "portal.profile": "Profil",
        "portal.profiles": "Profile",
        "portal.signed_in_as": "Angemeldet als {name}",
        "portal.no_profiles": "Ihrem Zugang ist noch kein Profil zugeordnet. Bitte wenden Sie sich an den Betreiber.",
        "portal.no_pages": "Für dieses Profil gibt es noch keine Seiten.",
        "portal.not_found.title": "Nicht gefunden",
        "portal.not_found.text": "Diese Seite gibt es nicht.",
        "portal.error.title": "Fehler",
        "portal.error.text": "Das hat nicht geklappt. Bitte versuchen Sie es später noch einmal.",
        "portal.forbidden.title": "Abgelehnt",
        "portal.forbidden.text": "Das Formular war abgelaufen. Bitte laden Sie die Seite neu und versuchen Sie es noch einmal.",
        "portal.method.title": "Nicht erlaubt",
        "portal.copy": "Kopieren",
        "portal.copied": "Kopiert",
    },
    "en": {
        "portal.name": "Prepaid portal",
        "portal.area": "Payment › Prepaid",
        "portal.login.title": "Log in",
        "portal.login.user": "User name",
        "portal.login.password": "Password",
        "portal.login.submit": "Log in",
        "portal.login.wrong": "The user name or the password is wrong.",
        "portal.login.locked": "After too many failed attempts, logging in is locked for a while.",
        "portal.logout": "Log out",
        "portal.logged_out": "You are logged out.",
        "portal.profile": "Profile",
        "portal.profiles": "Profiles",
        "portal.signed_in_as": "Logged in as {name}",
        "portal.no_profiles": "No profile is assigned to your login yet. Please ask the operator.",
        "portal.no_pages": "This profile has no pages yet.",
        "portal.not_found.title": "Not found",
        "portal.not_found.text": "There is no such page.",
        "portal.error.title": "Error",
        "portal.error.text": "That did not work. Please try again later.",
        "portal.forbidden.title": "Refused",
        "portal.forbidden.text": "The form had expired. Please reload the page and try again.",
        "portal.method.title": "Not allowed",
        "portal.copy": "Copy",
        "portal.copied": "Copied",
    },
}


def strings(pages: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, str]]:
    """The server's texts with the pages' merged in, per language (a page's key wins over none of ours:
    theirs are prefixed with the page's name)."""
    merged = {lang: dict(texts) for lang, texts in STRINGS.items()}
    for lang, texts in pages.items():
        merged.setdefault(lang, {}).update(texts)
    return merged
