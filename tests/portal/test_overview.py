"""The portal's overview on a real store (SQLite and PostgreSQL): today, this month, credit, the 30-day chart."""

from __future__ import annotations

from billing.store import CallRecord
from tests.conftest import fired
from webhook.portal.pages import overview as page

from .pagekit import NOW_MS, config, context, render

HOUR_MS = 3_600_000


def call(store, number, invite_ms, billed_s, profile="demo"):
    fired(store.add_call_record(CallRecord(
        call_id=f"c-{number}-{invite_ms}", profile=profile, service_number="+493012345678", caller=number,
        identity_source="from", privacy=False, caller_class="mobile", agent_tried=None, agent_answered=None,
        invite_ms=invite_ms, answer_ms=invite_ms, end_ms=invite_ms + billed_s * 1000, end_reason="bye",
        a_status=200, b_status=200, billed_s=billed_s, charge_cents=100)))


def test_today_and_month_are_cut_at_midnight_in_the_profiles_zone(store):
    """Now is 01.11.2026 01:00 in Berlin: a call at 00:30 Berlin is today's, one at 23:30 the evening before is
    October's (neither today nor this month); top-ups count with their money, bonuses not."""
    cfg = config()
    fired(store.topup(cfg.profiles["demo"].billing, "+4915112345678", 1000, source="t", external_ref="a",
                      actor="t"))                                            # at NOW_MS: today
    call(store, "+4915112345678", NOW_MS - HOUR_MS // 2, 125)                # 00:30 Berlin
    call(store, "+4915112345678", NOW_MS - 3 * HOUR_MS // 2, 60)             # 31.10. 23:30 Berlin
    today_ms, month_ms, bounds = page.spans(NOW_MS, "Europe/Berlin")
    ov = fired(store.overview("demo", now_ms=NOW_MS, today_ms=today_ms, month_ms=month_ms, day_bounds_ms=bounds))
    assert (ov.today.calls, ov.today.billed_s, ov.today.topups, ov.today.topup_cents) == (1, 125, 1, 1000)
    assert ov.month == ov.today
    assert (ov.accounts_with_credit, ov.credit_cents) == (1, 1100)
    assert [d.calls for d in ov.days[-2:]] == [1, 1] and sum(d.calls for d in ov.days) == 2
    _, html = render(page.overview, context(store, cfg))
    assert "<thead>" in html and "2:05" in html and "10,00 €" in html and "11,00 €" in html


def test_the_chart_is_inline_svg_with_labelled_axes(store):
    """The chart is an <svg> with a viewBox scaling to the page's width, a title, a count axis, day labels
    (dd.mm.) ending today, and one bar per day and series (30 days); its size comes from the stylesheet
    (class "chart"), since the Content-Security-Policy drops inline styles."""
    _, html = render(page.overview, context(store, config()))
    svg = html[html.index("<svg"):html.index("</svg>")]
    assert 'viewBox="0 0 360 200"' in svg and 'width="100%"' in svg and "<title>" in svg
    assert 'class="chart"' in svg and "style=" not in html
    assert "Anzahl" in svg and ">Tag<" in svg and "01.11.</text>" in svg and "25.10.</text>" in svg
    assert svg.count("<rect") == 2 * 30 + 2                                    # bars and the legend's swatches


def test_another_profiles_figures_are_not_counted(store):
    """Calls, top-ups and credit under profile ``other`` leave ``demo``'s overview at zero."""
    cfg = config()
    fired(store.topup(cfg.profiles["other"].billing, "+4915112345678", 1000, source="t", external_ref="o",
                      actor="t"))
    call(store, "+4915112345678", NOW_MS - 1000, 60, profile="other")
    _, html = render(page.overview, context(store, cfg))
    assert "10,00 €" not in html and "1:00" not in html and "0,00 €" in html
