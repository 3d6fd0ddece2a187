"""RFC 4028 session timers per leg: negotiation outcomes and the times they give."""

from b2bua.session_timer import (SessionExpires, Terms, TooSmall, as_uac, as_uas,
                                 retry_after_422, uac_request_headers)


def test_too_small_interval_gets_422_with_our_min_se():
    """Session-Expires below our Min-SE is answered 422 carrying Min-SE (§9)."""
    terms, reject, headers = as_uas("60", None, True, our_min_se_s=90, our_se_s=1800)
    assert terms is None and reject == TooSmall(90) and headers == [("Min-SE", "90")]


def test_uac_choice_of_refresher_is_kept():
    """refresher=uac from a timer-capable carrier: they refresh, we only watch; Require: timer."""
    terms, reject, headers = as_uas("1800;refresher=uac", "90", True, 90, 1800)
    assert reject is None and terms == Terms(1800, False)
    assert headers == [("Session-Expires", "1800;refresher=uac"), ("Require", "timer")]


def test_carrier_without_timer_support_makes_us_refresher():
    """A UAC that did not say Supported: timer cannot refresh: refresher=uas, no Require (§9)."""
    terms, _, headers = as_uas("600", None, False, 90, 1800)
    assert terms == Terms(600, True)
    assert headers == [("Session-Expires", "600;refresher=uas")]


def test_we_shorten_but_never_below_their_min_se():
    """We may lower a long interval to ours, not below the request's Min-SE."""
    terms, _, _ = as_uas("7200;refresher=uas", "3600", True, 90, 1800)
    assert terms == Terms(3600, True)


def test_no_session_expires_in_request_we_insert_one():
    terms, _, headers = as_uas(None, None, True, 90, 1800)
    assert terms == Terms(1800, False) and ("Require", "timer") in headers


def test_uac_side():
    """Our INVITE asks for a timer; the agent's 2xx decides; none in the 2xx means no timer."""
    assert ("Session-Expires", "1800;refresher=uac") in uac_request_headers(1800, 90)
    assert as_uac("1800;refresher=uac") == Terms(1800, True)
    assert as_uac("900;refresher=uas") == Terms(900, False)
    assert as_uac(None) is None
    assert retry_after_422("2400", 1800) == 2400


def test_refresh_and_expiry_times():
    """Refresh at half the interval; without one, BYE min(32, interval/3) before it ends."""
    t = Terms(1800, True)
    assert t.refresh_due(100.0) == 1000.0
    assert t.expires_at(100.0) == 100.0 + 1800 - 32
    assert Terms(90, False).expires_at(0.0) == 60.0


def test_parse_tolerates_junk():
    assert SessionExpires.parse("abc") is None
    assert SessionExpires.parse("1800; Refresher = UAS") == SessionExpires(1800, "uas")
