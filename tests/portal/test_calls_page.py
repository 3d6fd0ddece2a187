"""The portal's call list (EVN): every call of the profile and none of another, filters, paging, CSV, the
number as received, and the hint that finds the account a refused caller's number is a typo of."""

from __future__ import annotations

import datetime
import zoneinfo

import pytest

from b2bua.identity import identify
from billing.db import calls as db_calls
from billing.db.near_numbers import near
from billing.db.rows import CallRecord
from tests.conftest import fired
from webhook.portal.pages import calls

from .pages_support import call, example_config, html

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


def ms(day: int, hour: int = 12) -> int:
    return int(datetime.datetime(2026, 11, day, hour, tzinfo=BERLIN).timestamp() * 1000)


def record(caller, *, profile="demo", day=2, reason="caller_hangup", answered=True, billed_s=120, cents=398,
           received=None, source="from", call_id=None, privacy=False):
    invite = ms(day)
    return CallRecord(call_id=call_id or f"{caller}-{day}-{reason}", profile=profile,
                      service_number="+493012345678", caller=caller, identity_source=source, privacy=privacy,
                      caller_class="mobile", agent_tried="sip:agent@127.0.0.1:5070",
                      agent_answered="sip:agent@127.0.0.1:5070" if answered else None, invite_ms=invite,
                      answer_ms=invite + 2000 if answered else None, end_ms=invite + 2000 + billed_s * 1000,
                      end_reason=reason, a_status=200 if answered else 402, b_status=200 if answered else None,
                      billed_s=billed_s if answered else 0, charge_cents=cents if answered else 0,
                      caller_received=received or caller)


def refused(caller, **kw):
    return record(caller, reason="no_credit", answered=False, **kw)


def add(store, *records):
    fired(store.run(db_calls.add_many, tuple(records)))


def account(store, number, cents, profile="demo"):
    fired(store.credit(profile, number, cents, kind="manual", source="test", external_ref=f"{profile}{number}",
                       actor="test"))


@pytest.fixture
def config():
    return example_config()


def page(store, config, lang="en", **query):
    return call(calls.calls_page, store, config, calls, lang=lang, query=query)


def rows(text: str) -> str:
    """The table's body of a page (the filter form names every outcome too)."""
    return text.partition("<tbody>")[2].partition("</tbody>")[0]


def test_every_callers_calls_of_the_profile_and_none_of_another(store, config):
    """The list holds the calls of every caller of the profile, newest first, with outcome in words, talk
    time, billed seconds and charge; a call of another profile is not shown."""
    add(store, record("+4915111111111", day=2), record("+4915122222222", day=3, reason="credit_exhausted"),
        record("+4915133333333", day=4, profile="other"))
    text = html(page(store, config))
    assert text.index("+4915122222222") < text.index("+4915111111111")
    assert "+4915133333333" not in text
    assert "cut off by credit" in rows(text) and "talked" in rows(text) and "2:00" in text and "€3.98" in text
    assert "2 calls, page 1 of 1" in text and 'class="data"' in text


def test_filters_by_date_number_and_outcome(store, config):
    """From/to are whole days in the profile's zone; the number in any usual form matches the caller; the
    outcome selects by what became of the call."""
    add(store, record("+4915111111111", day=2), refused("+4915122222222", day=3),
        record("+4915122222222", day=5, reason="agent_hangup"))
    only = lambda **q: html(page(store, config, **q))  # noqa: E731
    assert "1 calls" in only(**{"from": "2026-11-03", "to": "2026-11-03"})
    text = only(number="0151 22222222")
    assert "2 calls" in text and "+4915111111111" not in text
    text = only(outcome="no_credit")
    assert "1 calls" in text and "no credit" in rows(text) and "talked" not in rows(text)
    assert "2 calls" in only(outcome="talked")


def test_paging_links_keep_the_filter(store, config):
    """More calls than a page: the first page shows PAGE_SIZE and links to the next with the same filter."""
    add(store, *[record(f"+49151000000{i:02d}", call_id=f"c{i}") for i in range(calls.PAGE_SIZE + 3)])
    text = html(page(store, config, outcome="talked"))
    assert f"{calls.PAGE_SIZE + 3} calls, page 1 of 2" in text
    assert "/p/demo/calls?from=&amp;" not in text
    assert 'href="/p/demo/calls?outcome=talked&amp;page=2"' in text
    second = html(page(store, config, outcome="talked", page="2"))
    assert second.count("<tr>") == 3 + 1 and "newer" in second.lower()


def test_csv_has_every_matching_call(store, config):
    """format=csv gives a header and one row per matching call, however many pages it would take."""
    add(store, *[record(f"+49151000000{i:02d}", call_id=f"c{i}") for i in range(calls.PAGE_SIZE + 1)],
        refused("+4915199999999"))
    result = page(store, config, format="csv", outcome="talked")
    assert result.filename == "calls-demo.csv"
    assert result.rows[0][1] == "Caller (identified)" and len(result.rows) == calls.PAGE_SIZE + 2
    assert result.rows[1][4] == "talked" and result.rows[1][7] == "€3.98"


def test_the_hint_finds_typos_and_not_an_unrelated_number(store, config):
    """A caller refused for no credit whose number has no account is shown the accounts a typo away: one
    digit wrong, a swapped pair, a leading digit missing; each with its balance and a link to fix the
    number; an unrelated account is not offered, and a refused caller with an account gets no hint."""
    account(store, "+4915112345678", 1500)      # one digit from the first caller
    account(store, "+4917621436587", 700)       # a swapped pair from the second
    account(store, "+4930123456789", 900)       # the third without its leading 3 after +49
    account(store, "+4915199999999", 100)       # unrelated
    account(store, "+4916000000000", 1)         # refused with an account: no hint
    add(store, refused("+4915112345679", call_id="a"), refused("+4917612436587", call_id="b"),
        refused("+490123456789", call_id="c"), refused("+4916000000000", call_id="d"))
    text = html(page(store, config))
    assert text.count("This number has no account.") == 3
    for number, balance in (("+4915112345678", "€15.00"), ("+4917621436587", "€7.00"),
                            ("+4930123456789", "€9.00")):
        assert f'href="/p/demo/customers/edit?number=%2B{number[1:]}"' in text
        assert f"{number} (balance {balance})" in text
    assert "+4915199999999" not in text


def test_near_is_one_or_two_digits_or_one_more_or_less():
    """The rule behind the hint, on E.164 digits."""
    assert near("+4915112345678", "+4915112345679") and near("+4915112345678", "+4915112354678")
    assert near("+4915112345678", "+491512345678") and near("+4915112345678", "+49915112345678")
    assert not near("+4915112345678", "+4915112345678") and not near("+4915112345678", "+4915198765432")
    assert not near("+4915112345678", "+49151123456")


def test_html_in_numbers_is_escaped(store, config):
    """A From user part with markup is shown as text, never as HTML."""
    add(store, record(None, received="<script>x</script>", source="none", reason="unidentified", answered=False))
    text = html(page(store, config))
    assert "<script>" not in text and "&lt;script&gt;x&lt;/script&gt;" in text and "not identified" in rows(text)


def test_texts_in_german(store, config):
    """A German user reads German headings and outcomes, and money the German way."""
    add(store, record("+4915111111111"))
    result = page(store, config, lang="de")
    text = html(result)
    assert result.title == "Anrufe (EVN)" and "Gespräch" in rows(text) and "3,98 €" in text


TRUSTED = [__import__("ipaddress").ip_network("127.0.0.1/32")]


@pytest.mark.parametrize("from_value,pai,expected", [
    ("<sip:015112345678@carrier>", [], "+4915112345678"),
    ("<sip:user.name@carrier>", [], "user.name"),
    ('"Anonymous" <sip:anonymous@anonymous.invalid>', ["<tel:+4930111111>"], "+4930111111"),
    ("<sip:" + "9" * 40 + "x@carrier>", [], "9" * 32),
])
def test_the_number_as_received(from_value, pai, expected):
    """The identity keeps the number the INVITE gave: the From's in E.164 where it reads as a number, else
    its user part as it came (cut to 32), the PAI's when the From is anonymous."""
    identity = identify(from_value=from_value, privacy_values=[], pai_values=pai, source_host="127.0.0.1",
                        trusted=TRUSTED, default_region="DE")
    assert identity.received == expected
