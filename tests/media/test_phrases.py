"""Spoken numbers, amounts and messages: German and English grammar, as prompt names."""

from decimal import Decimal

import pytest

from media import phrases
from media.phrases import amount_phrase, minutes_phrase

DE_MINUTES = {
    0: ["null", "minuten"],
    1: ["eine", "minute"],
    2: ["zwei", "minuten"],
    16: ["sechzehn", "minuten"],
    21: ["ein", "und", "zwanzig", "minuten"],
    99: ["neun", "und", "neunzig", "minuten"],
    100: ["hundert", "minuten"],
    101: ["hundert", "eins", "minuten"],
    1000: ["tausend", "minuten"],
    1999: ["tausend", "neun", "hundert", "neun", "und", "neunzig", "minuten"],
    9999: ["neun", "tausend", "neun", "hundert", "neun", "und", "neunzig", "minuten"],
}

EN_MINUTES = {
    0: ["zero", "minutes"],
    1: ["one", "minute"],
    2: ["two", "minutes"],
    16: ["sixteen", "minutes"],
    21: ["twenty", "one", "minutes"],
    99: ["ninety", "nine", "minutes"],
    100: ["one", "hundred", "minutes"],
    101: ["one", "hundred", "and", "one", "minutes"],
    1000: ["one", "thousand", "minutes"],
    1999: ["one", "thousand", "nine", "hundred", "and", "ninety", "nine", "minutes"],
    9999: ["nine", "thousand", "nine", "hundred", "and", "ninety", "nine", "minutes"],
}


@pytest.mark.parametrize("n", sorted(DE_MINUTES))
def test_german_minutes(n):
    """German minutes: "eine Minute" (feminine, singular), "einundzwanzig Minuten", "hunderteins", "tausend…"."""
    assert minutes_phrase(n, "de") == DE_MINUTES[n]


@pytest.mark.parametrize("n", sorted(EN_MINUTES))
def test_english_minutes(n):
    """English minutes: "one minute", "twenty-one minutes", British "one hundred and one"."""
    assert minutes_phrase(n, "en") == EN_MINUTES[n]


@pytest.mark.parametrize("cents,de,en", [
    (99, ["neun", "und", "neunzig", "cent"], ["ninety", "nine", "cents"]),
    (100, ["ein", "euro"], ["one", "euro"]),
    (199, ["ein", "euro", "neun", "und", "neunzig"], ["one", "euro", "ninety", "nine"]),
    (249, ["zwei", "euro", "neun", "und", "vierzig"],
     ["two", "euros", "forty", "nine"]),
    (1250, ["zwoelf", "euro", "fuenfzig"], ["twelve", "euros", "fifty"]),
    (200, ["zwei", "euro"], ["two", "euros"]),
    (1, ["ein", "cent"], ["one", "cent"]),
    (101, ["ein", "euro", "eins"], ["one", "euro", "one"]),
])
def test_amounts(cents, de, en):
    """Amounts: "ein Euro neunundneunzig", "zwei Euro", "neunundneunzig Cent", "one euro ninety-nine"."""
    assert amount_phrase(cents, "de") == de
    assert amount_phrase(cents, "en") == en


def test_messages_are_built_from_parts():
    """The product's messages: remaining minutes, tariff by caller class, warning, PIN variants."""
    assert phrases.remaining_minutes(21, "de") == ["credit_lasts", "ein", "und", "zwanzig", "minuten"]
    assert phrases.tariff(Decimal("1.99"), "mobile", "de") == \
        ["call_costs", "ein", "euro", "neun", "und", "neunzig", "per_minute_mobile"]
    assert phrases.tariff(249, "landline", "en", cents=True) == \
        ["call_costs", "two", "euros", "forty", "nine", "per_minute_landline"]
    assert phrases.warning("de") == ["credit_lasts_still", "zwei", "minuten"]
    assert phrases.warning("en") == ["credit_lasts_still", "two", "minutes"]
    assert phrases.credit_used_up("en") == ["credit_used_up"]
    assert phrases.topped_up("de", 1) == ["topped_up", "credit_lasts", "eine", "minute"]
    assert phrases.no_credit("de") == ["no_credit"]
    assert phrases.withheld("de", pin=False) == ["withheld", "call_with_number"]
    assert phrases.withheld("en", pin=True) == ["withheld", "enter_pin"]
    assert phrases.pin_wrong("en") == ["pin_wrong"]


def test_credit_under_a_minute_is_less_than_a_minute_not_zero_minutes():
    """A 1/1 tariff starts a call on 45 s of credit: the caller hears "less than a minute", never
    "zero minutes" (which says the call cannot go on); the same for a top-up and a warning."""
    assert phrases.remaining_minutes(0, "de") == ["credit_lasts", "less_than_a_minute"]
    assert phrases.remaining_minutes(0, "en") == ["credit_lasts", "less_than_a_minute"]
    assert phrases.topped_up("en", 0) == ["topped_up", "credit_lasts", "less_than_a_minute"]
    assert phrases.warning("de", left_s=0) == ["credit_lasts_still", "less_than_a_minute"]
    assert phrases.remaining_minutes(1, "en") == ["credit_lasts", "one", "minute"]
    with pytest.raises(ValueError):
        phrases.remaining_minutes(0, "fr")


def test_every_number_uses_only_recorded_prompts():
    """Every number 0..9999 in both languages, and every message, is made only of prompts in PROMPT_TEXTS."""
    for lang in phrases.LANGUAGES:
        known = phrases.PROMPT_TEXTS[lang]
        for n in range(10000):
            assert set(minutes_phrase(n, lang)) <= known.keys()
            assert set(amount_phrase(n * 101 % 1000000, lang)) <= known.keys()
        for msg in (phrases.credit_used_up(lang), phrases.no_credit(lang), phrases.withheld(lang, True),
                    phrases.withheld(lang, False), phrases.pin_wrong(lang), phrases.topped_up(lang, 5),
                    phrases.tariff(Decimal("0.49"), "landline", lang), phrases.warning(lang),
                    phrases.agent_warning(lang), *(phrases.warning(lang, left_s=s) for s in range(3700)),
                    *(phrases.agent_warning(lang, left_s=s) for s in (0, 1, 5, 90, 600)),
                    phrases.remaining_minutes(0, lang), phrases.first_caller_offer(1, 0, lang),
                    phrases.first_caller_offer(1, 99, lang, cents=True), phrases.first_caller_offer(7, 0, lang)):
            assert set(msg) <= known.keys()


def test_german_numbers_read_back_as_words():
    """Joined German fragments spell the number as written: 1999 -> "tausendneunhundertneunundneunzig"."""
    spelled = {n: "".join(phrases.number_words(n, "de")) for n in (1, 21, 101, 1999, 2021, 7070)}
    assert spelled == {1: "eins", 21: "einundzwanzig", 101: "hunderteins",
                       1999: "tausendneunhundertneunundneunzig", 2021: "zweitausendeinundzwanzig",
                       7070: "siebentausendsiebzig"}


@pytest.mark.parametrize("bad", [-1, 10000, 1.5, True, "3"])
def test_out_of_range_is_a_clear_error(bad):
    """Numbers outside 0..9999 (or not whole) raise ValueError; so does an unknown language."""
    with pytest.raises(ValueError):
        minutes_phrase(bad, "de")
    with pytest.raises(ValueError):
        minutes_phrase(1, "fr")
    with pytest.raises(ValueError):
        amount_phrase(1_000_000, "en")


def test_a_one_minute_offer_has_its_own_grammar():
    """A 60 s first-caller offer was not said at all (and a shorter period was said as "two minutes"): one
    minute is "Ihre erste Minute ist kostenlos" / "Your first minute costs only ninety-nine cents"."""
    assert phrases.first_caller_offer(1, 0, "de") == ["offer_first_minute", "offer_is_free"]
    assert phrases.first_caller_offer(1, 99, "en", cents=True) == [
        "offer_first_minute", "offer_costs_only", "ninety", "nine", "cents"]
    assert phrases.first_caller_offer(2, 0, "de") == ["offer_first", "zwei", "minuten", "offer_are_free"]
    with pytest.raises(ValueError):
        phrases.first_caller_offer(0, 0, "de")


# seconds left when the warning fires -> (minutes, seconds) said, the German and the English words
TIME_LEFT = {
    1: ((0, 1), "eine Sekunde", "one second"),
    5: ((0, 5), "fünf Sekunden", "five seconds"),
    7: ((0, 7), "sieben Sekunden", "seven seconds"),
    10: ((0, 10), "zehn Sekunden", "ten seconds"),
    14: ((0, 10), "zehn Sekunden", "ten seconds"),
    30: ((0, 30), "dreißig Sekunden", "thirty seconds"),
    59: ((0, 55), "fünf und fünfzig Sekunden", "fifty five seconds"),
    60: ((1, 0), "eine Minute", "one minute"),
    61: ((1, 0), "eine Minute", "one minute"),
    90: ((1, 30), "eine Minute und dreißig Sekunden", "one minute and thirty seconds"),
    119: ((1, 30), "eine Minute und dreißig Sekunden", "one minute and thirty seconds"),
    120: ((2, 0), "zwei Minuten", "two minutes"),
    125: ((2, 0), "zwei Minuten", "two minutes"),
    179: ((2, 30), "zwei Minuten und dreißig Sekunden", "two minutes and thirty seconds"),
    180: ((3, 0), "drei Minuten", "three minutes"),
    600: ((10, 0), "zehn Minuten", "ten minutes"),
}


def _text(names: list[str], lang: str) -> str:
    return " ".join(phrases.PROMPT_TEXTS[lang][name] for name in names)


@pytest.mark.parametrize("left_s", sorted(TIME_LEFT))
def test_the_warning_says_the_time_left_never_more_than_there_is(left_s):
    """Any warn_before_s (or what a top-up leaves): under a minute the seconds (exact below 10, else down to
    5), under three minutes the minutes and a half minute, then whole minutes; never more than is left,
    singular for one. The caller hears it after "Ihr Guthaben reicht noch für", the agent after the
    shorter "Guthaben reicht noch" / "Credit ends in"."""
    said, de, en = TIME_LEFT[left_s]
    assert phrases.time_left(left_s) == said
    assert said[0] * 60 + said[1] <= left_s
    assert _text(phrases.time_left_phrase(left_s, "de"), "de") == de
    assert _text(phrases.time_left_phrase(left_s, "en"), "en") == en
    assert _text(phrases.warning("de", left_s=left_s), "de") == f"Ihr Guthaben reicht noch für {de}"
    assert _text(phrases.warning("en", left_s=left_s), "en") == f"Your remaining credit lasts {en}"
    assert _text(phrases.agent_warning("de", left_s=left_s), "de") == f"Guthaben reicht noch {de}"
    assert _text(phrases.agent_warning("en", left_s=left_s), "en") == f"Credit ends in {en}"


def test_the_agent_warning_is_shorter_than_the_callers():
    """The agent hears fewer words than the caller for the same time left (it is mixed over the talk)."""
    for lang in phrases.LANGUAGES:
        for left_s in TIME_LEFT:
            agent = _text(phrases.agent_warning(lang, left_s=left_s), lang)
            caller = _text(phrases.warning(lang, left_s=left_s), lang)
            assert len(agent) < len(caller)


def test_no_time_left_is_less_than_a_minute_and_a_bad_time_is_a_clear_error():
    """0 s left says "less than a minute" (not "zero seconds"); a negative or fractional time raises ValueError."""
    assert phrases.time_left(0) == (0, 0)
    assert phrases.agent_warning("en", left_s=0) == ["agent_credit_left", "less_than_a_minute"]
    for bad in (-1, 1.5, True, "30"):
        with pytest.raises(ValueError, match="whole number of seconds"):
            phrases.time_left(bad)
    with pytest.raises(ValueError):
        phrases.warning("fr", left_s=30)
