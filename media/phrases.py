"""Spoken numbers, amounts and the product's messages, as lists of prompt names.

Pure: nothing here touches audio.  A phrase is a list of prompt names; the
:class:`media.library.PromptLibrary` of the same language turns it into frames.
Numbers 0..9999 are assembled from a few dozen recorded fragments (units,
teens, tens, "und"/"and", "hundert"/"hundred", "tausend"/"thousand"), so the
prompt set stays small.

``PROMPT_TEXTS`` is the one list of every prompt and what it says;
``scripts/make_prompts.py`` records exactly these.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

__all__ = [
    "LANGUAGES", "PROMPT_TEXTS", "number_words", "minutes_phrase", "seconds_phrase", "amount_phrase",
    "time_left", "time_left_phrase", "agent_warning",
    "remaining_minutes", "tariff", "warning", "credit_used_up", "topped_up",
    "no_credit", "withheld", "pin_wrong", "pin_locked", "no_agent", "first_caller_offer", "free_minutes_over",
]

LANGUAGES = ("de", "en")
MAX_NUMBER = 9999

# -- German ---------------------------------------------------------------------

_DE_UNITS = ("null", "eins", "zwei", "drei", "vier", "fuenf", "sechs", "sieben", "acht", "neun")
_DE_TEENS = ("zehn", "elf", "zwoelf", "dreizehn", "vierzehn", "fuenfzehn", "sechzehn",
             "siebzehn", "achtzehn", "neunzehn")
_DE_TENS = ("", "", "zwanzig", "dreissig", "vierzig", "fuenfzig", "sechzig", "siebzig",
            "achtzig", "neunzig")

_DE_WORDS = {
    "null": "null", "ein": "ein", "eine": "eine", "eins": "eins", "zwei": "zwei", "drei": "drei",
    "vier": "vier", "fuenf": "fünf", "sechs": "sechs", "sieben": "sieben", "acht": "acht",
    "neun": "neun", "zehn": "zehn", "elf": "elf", "zwoelf": "zwölf", "dreizehn": "dreizehn",
    "vierzehn": "vierzehn", "fuenfzehn": "fünfzehn", "sechzehn": "sechzehn",
    "siebzehn": "siebzehn", "achtzehn": "achtzehn", "neunzehn": "neunzehn",
    "zwanzig": "zwanzig", "dreissig": "dreißig", "vierzig": "vierzig", "fuenfzig": "fünfzig",
    "sechzig": "sechzig", "siebzig": "siebzig", "achtzig": "achtzig", "neunzig": "neunzig",
    "und": "und", "hundert": "hundert", "tausend": "tausend",
    "minute": "Minute", "minuten": "Minuten", "euro": "Euro", "cent": "Cent",
    "sekunde": "Sekunde", "sekunden": "Sekunden",
}

# -- English --------------------------------------------------------------------

_EN_UNITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_EN_TEENS = ("ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
             "seventeen", "eighteen", "nineteen")
_EN_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")

_EN_WORDS = {w: w for w in _EN_UNITS + _EN_TEENS + _EN_TENS[2:]}
_EN_WORDS.update({"and": "and", "hundred": "hundred", "thousand": "thousand",
                  "minute": "minute", "minutes": "minutes", "euro": "euro", "euros": "euros",
                  "cent": "cent", "cents": "cents", "second": "second", "seconds": "seconds"})

# -- messages (same names in both languages) -------------------------------------

_MESSAGES = {
    "de": {
        "credit_lasts": "Ihr Guthaben reicht für",
        "credit_lasts_still": "Ihr Guthaben reicht noch für",
        "agent_credit_left": "Guthaben reicht noch",
        "call_costs": "Dieser Anruf kostet",
        "per_minute_landline": "pro Minute aus dem Festnetz.",
        "per_minute_mobile": "pro Minute aus dem Mobilfunknetz.",
        "credit_used_up": "Ihr Guthaben ist aufgebraucht. Auf Wiederhören.",
        "topped_up": "Ihr Guthaben wurde aufgeladen.",
        "no_credit": ("Sie haben kein Guthaben. Bitte laden Sie Ihr Guthaben auf unserer Webseite auf, "
                      "mit PayPal, Klarna oder paysafecard."),
        "withheld": "Ihre Rufnummer ist unterdrückt.",
        "call_with_number": "Bitte rufen Sie mit angezeigter Rufnummer an.",
        "enter_pin": "Bitte geben Sie Ihre Kunden-PIN ein, und drücken Sie dann die Raute-Taste.",
        "pin_wrong": "Die PIN ist falsch.",
        "pin_locked": ("Zu viele falsche PIN-Eingaben. Bitte versuchen Sie es später noch einmal. "
                       "Auf Wiederhören."),
        "no_agent": "Leider ist niemand erreichbar. Der Anruf war kostenlos.",
        "less_than_a_minute": "weniger als eine Minute.",
        "offer_first": "Ihre ersten",
        "offer_are_free": "sind kostenlos.",
        "offer_cost_only": "kosten nur",
        "offer_per_minute": "pro Minute.",
        "offer_first_minute": "Ihre erste Minute",
        "offer_is_free": "ist kostenlos.",
        "offer_costs_only": "kostet nur",
        "free_minutes_over": "Ihre Freiminuten sind aufgebraucht.",
    },
    "en": {
        "credit_lasts": "Your credit lasts",
        "credit_lasts_still": "Your remaining credit lasts",
        "agent_credit_left": "Credit ends in",
        "call_costs": "This call costs",
        "per_minute_landline": "per minute from a landline.",
        "per_minute_mobile": "per minute from a mobile phone.",
        "credit_used_up": "Your credit is used up. Goodbye.",
        "topped_up": "Your credit has been topped up.",
        "no_credit": ("You have no credit. Please top up on our web page, "
                      "with PayPal, Klarna or paysafecard."),
        "withheld": "Your number is withheld.",
        "call_with_number": "Please call again with your number shown.",
        "enter_pin": "Please type your customer PIN, then press the hash key.",
        "pin_wrong": "The PIN is wrong.",
        "pin_locked": "Too many wrong PINs. Please try again later. Goodbye.",
        "no_agent": "Nobody can take your call. You were not charged.",
        "less_than_a_minute": "less than a minute.",
        "offer_first": "Your first",
        "offer_are_free": "are free.",
        "offer_cost_only": "cost only",
        "offer_per_minute": "per minute.",
        "offer_first_minute": "Your first minute",
        "offer_is_free": "is free.",
        "offer_costs_only": "costs only",
        "free_minutes_over": "Your free minutes are over.",
    },
}

#: every prompt name per language -> the text it says
PROMPT_TEXTS: dict[str, dict[str, str]] = {
    "de": {**_DE_WORDS, **_MESSAGES["de"]},
    "en": {**_EN_WORDS, **_MESSAGES["en"]},
}

Gender = Literal["n", "f", "m"]


def _check(n: int, lang: str) -> None:
    if lang not in LANGUAGES:
        raise ValueError(f"no prompts in language {lang!r}")
    if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= MAX_NUMBER:
        raise ValueError(f"can only speak whole numbers 0..{MAX_NUMBER}, not {n!r}")


def _de_below_100(n: int, final: bool) -> list[str]:
    """1..99; ``final``: nothing follows inside the number (so 1 is "eins", not "ein")."""
    if n < 10:
        return ["eins" if final else "ein"] if n == 1 else [_DE_UNITS[n]]
    if n < 20:
        return [_DE_TEENS[n - 10]]
    tens, unit = divmod(n, 10)
    if unit == 0:
        return [_DE_TENS[tens]]
    return ["ein" if unit == 1 else _DE_UNITS[unit], "und", _DE_TENS[tens]]


def _de_number(n: int, gender: Gender) -> list[str]:
    if n == 0:
        return ["null"]
    if n == 1:                                   # "eine Minute", "ein Euro", "eins"
        return [{"f": "eine", "m": "ein", "n": "eins"}[gender]]
    words: list[str] = []
    thousands, rest = divmod(n, 1000)
    hundreds, rest = divmod(rest, 100)
    if thousands:
        words += ([] if thousands == 1 else _de_below_100(thousands, False)) + ["tausend"]
    if hundreds:
        words += ([] if hundreds == 1 else _de_below_100(hundreds, False)) + ["hundert"]
    if rest:
        words += _de_below_100(rest, True)
    return words


def _en_below_100(n: int) -> list[str]:
    if n < 10:
        return [_EN_UNITS[n]]
    if n < 20:
        return [_EN_TEENS[n - 10]]
    tens, unit = divmod(n, 10)
    return [_EN_TENS[tens]] + ([_EN_UNITS[unit]] if unit else [])


def _en_number(n: int) -> list[str]:
    if n == 0:
        return ["zero"]
    words: list[str] = []
    thousands, rest = divmod(n, 1000)
    hundreds, rest = divmod(rest, 100)
    if thousands:
        words += _en_below_100(thousands) + ["thousand"]
    if hundreds:
        words += _en_below_100(hundreds) + ["hundred"]
    if rest:
        if words:
            words.append("and")                  # British usage: "one hundred and one"
        words += _en_below_100(rest)
    return words


def number_words(n: int, lang: str, gender: Gender = "n") -> list[str]:
    """The prompt names that speak ``n`` (0..9999); German ``gender`` picks eins/ein/eine for 1."""
    _check(n, lang)
    return _de_number(n, gender) if lang == "de" else _en_number(n)


def _counted(n: int, lang: str, unit: dict[str, tuple[str, str]]) -> list[str]:
    """``n`` of a feminine unit (Minute, Sekunde): the number, then the unit's (singular, plural) word."""
    _check(n, lang)
    one, many = unit[lang]
    return (_de_number(n, "f") if lang == "de" else _en_number(n)) + [one if n == 1 else many]


def minutes_phrase(n: int, lang: str) -> list[str]:
    """``n`` minutes: "eine Minute", "einundzwanzig Minuten", "one minute", "twenty-one minutes"."""
    return _counted(n, lang, {"de": ("minute", "minuten"), "en": ("minute", "minutes")})


def seconds_phrase(n: int, lang: str) -> list[str]:
    """``n`` seconds: "eine Sekunde", "dreißig Sekunden", "one second", "thirty seconds"."""
    return _counted(n, lang, {"de": ("sekunde", "sekunden"), "en": ("second", "seconds")})


def _to_cents(amount: Decimal | int, *, cents: bool) -> int:
    if cents:
        if not isinstance(amount, int) or isinstance(amount, bool):
            raise ValueError(f"an amount in cents is a whole number, not {amount!r}")
        return amount
    value = Decimal(amount).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return int(value * 100)


def amount_phrase(amount_cents: int, lang: str) -> list[str]:
    """An amount of money in cents: "ein Euro neunundneunzig", "neunundneunzig Cent", "two euros".

    Whole euros and the cents after them follow the spoken habit (no second
    currency word); below one euro only cents are said.
    """
    if lang not in LANGUAGES:
        raise ValueError(f"no prompts in language {lang!r}")
    if not isinstance(amount_cents, int) or isinstance(amount_cents, bool) or amount_cents < 0:
        raise ValueError(f"an amount is a non-negative whole number of cents, not {amount_cents!r}")
    euros, cents = divmod(amount_cents, 100)
    if euros > MAX_NUMBER:
        raise ValueError(f"can only speak amounts up to {MAX_NUMBER} euro, not {amount_cents} cents")
    if lang == "de":
        if euros == 0:
            return _de_number(cents, "m") + ["cent"]
        words = _de_number(euros, "m") + ["euro"]
        return words + (_de_number(cents, "n") if cents else [])
    if euros == 0:
        return _en_number(cents) + ["cent" if cents == 1 else "cents"]
    words = _en_number(euros) + ["euro" if euros == 1 else "euros"]
    return words + (_en_number(cents) if cents else [])


# -- the product's messages ----------------------------------------------------------

def _lasts(n: int, lang: str) -> list[str]:
    """What the credit lasts: ``n`` minutes, or "less than a minute" for 0 (a 1/1 tariff can start a call
    on 45 s of credit, and "your credit lasts zero minutes" would tell the caller it cannot call)."""
    if n == 0:
        _check(0, lang)
        return ["less_than_a_minute"]
    return minutes_phrase(n, lang)


def remaining_minutes(n: int, lang: str) -> list[str]:
    """"Ihr Guthaben reicht für … Minuten" / "Your credit lasts … minutes" ("less than a minute" for 0)."""
    return ["credit_lasts"] + _lasts(n, lang)


def tariff(per_minute: Decimal | int, caller_class: str, lang: str, *, cents: bool = False) -> list[str]:
    """"Dieser Anruf kostet … pro Minute aus dem Festnetz/Mobilfunknetz"; ``per_minute`` in euro (Decimal), or in cents with ``cents=True``."""
    if caller_class not in ("landline", "mobile"):
        raise ValueError(f"caller_class is 'landline' or 'mobile', not {caller_class!r}")
    return (["call_costs"] + amount_phrase(_to_cents(per_minute, cents=cents), lang)
            + [f"per_minute_{caller_class}"])


#: below this many seconds left a warning says the whole seconds; up to a minute, a multiple of SECONDS_STEP
EXACT_SECONDS_BELOW = 10
SECONDS_STEP = 5
#: below this a warning says the minutes and, when at least 30 s more are left, "and thirty seconds"
HALF_MINUTES_BELOW_S = 180


def time_left(left_s: int) -> tuple[int, int]:
    """What a warning says of ``left_s`` seconds of credit, as (minutes, seconds); never more than is left.

    Under 10 s the whole seconds (5 -> 0:05); under a minute the seconds rounded down to 5 (59 -> 0:55);
    under three minutes the whole minutes and a half minute when at least that is left (90 and 119 -> 1:30,
    61 -> 1:00); from three minutes the whole minutes (200 -> 3:00).  Nothing left is (0, 0)."""
    if not isinstance(left_s, int) or isinstance(left_s, bool) or left_s < 0:
        raise ValueError(f"the time left is a non-negative whole number of seconds, not {left_s!r}")
    minutes, seconds = divmod(left_s, 60)
    if minutes == 0:
        return 0, seconds if seconds < EXACT_SECONDS_BELOW else seconds - seconds % SECONDS_STEP
    if left_s < HALF_MINUTES_BELOW_S:
        return minutes, 30 if seconds >= 30 else 0
    return min(minutes, MAX_NUMBER), 0


def time_left_phrase(left_s: int, lang: str) -> list[str]:
    """``left_s`` seconds said as :func:`time_left` rounds them: "dreißig Sekunden", "eine Minute und dreißig
    Sekunden", "two minutes"; "weniger als eine Minute" / "less than a minute" when nothing is left."""
    minutes, seconds = time_left(left_s)
    if minutes == 0:
        return seconds_phrase(seconds, lang) if seconds else _lasts(0, lang)
    words = minutes_phrase(minutes, lang)
    return words + (["und" if lang == "de" else "and"] + seconds_phrase(seconds, lang) if seconds else [])


def warning(lang: str, *, left_s: int = 120) -> list[str]:
    """The caller's warning, ``left_s`` seconds before the credit ends (said as :func:`time_left` rounds):
    "Ihr Guthaben reicht noch für zwei Minuten" / "Your remaining credit lasts thirty seconds"."""
    return ["credit_lasts_still"] + time_left_phrase(left_s, lang)


def agent_warning(lang: str, *, left_s: int = 120) -> list[str]:
    """The agent's shorter warning, mixed over the conversation: "Guthaben reicht noch zwei Minuten" /
    "Credit ends in thirty seconds"."""
    return ["agent_credit_left"] + time_left_phrase(left_s, lang)


def credit_used_up(lang: str) -> list[str]:
    """The credit is used up; goodbye."""
    _check(0, lang)
    return ["credit_used_up"]


def topped_up(lang: str, minutes: int) -> list[str]:
    """The credit was topped up, and what it lasts now."""
    return ["topped_up"] + remaining_minutes(minutes, lang)


def no_credit(lang: str) -> list[str]:
    """No credit, and where to top up."""
    _check(0, lang)
    return ["no_credit"]


def withheld(lang: str, pin: bool) -> list[str]:
    """The number is withheld: call with it shown, or (``pin``) type the customer PIN and hash."""
    _check(0, lang)
    return ["withheld", "enter_pin" if pin else "call_with_number"]


def pin_wrong(lang: str) -> list[str]:
    """The PIN typed was wrong."""
    _check(0, lang)
    return ["pin_wrong"]


def pin_locked(lang: str) -> list[str]:
    """Too many wrong PINs from this line: try again later; goodbye."""
    _check(0, lang)
    return ["pin_locked"]


def no_agent(lang: str) -> list[str]:
    """No agent took the call (all busy, none answered): nobody can take it now, and it cost nothing."""
    _check(0, lang)
    return ["no_agent"]


def first_caller_offer(minutes: int, per_minute: Decimal | int, lang: str, *, cents: bool = False) -> list[str]:
    """The first-caller offer: "Ihre ersten fünf Minuten sind kostenlos" / "Your first five minutes are free",
    or for a discount "Ihre ersten fünf Minuten kosten nur neunundneunzig Cent pro Minute"; one minute in its
    own grammar: "Ihre erste Minute ist kostenlos" / "Your first minute costs only ninety-nine cents".

    ``minutes`` is 1 or more; ``per_minute`` in euro (Decimal), or cents with ``cents=True``."""
    _check(minutes, lang)
    if minutes < 1:
        raise ValueError(f"an offer is said for 1..{MAX_NUMBER} minutes, not {minutes!r}")
    amount = _to_cents(per_minute, cents=cents)
    if minutes == 1:
        return ["offer_first_minute"] + (["offer_is_free"] if amount == 0
                                         else ["offer_costs_only"] + amount_phrase(amount, lang))
    head = ["offer_first"] + minutes_phrase(minutes, lang)
    if amount == 0:
        return head + ["offer_are_free"]
    return head + ["offer_cost_only"] + amount_phrase(amount, lang) + ["offer_per_minute"]


def free_minutes_over(lang: str) -> list[str]:
    """The free minutes are over, and (the no-credit words) where to top up."""
    _check(0, lang)
    return ["free_minutes_over", "no_credit"]
