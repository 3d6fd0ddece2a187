"""The portal's page contract: scoping by role, money and times as each language writes them."""

from webhook.portal.view import OPERATOR, PROVIDER, PortalContext, PortalUser


def ctx(lang="de", **kw):
    return PortalContext(PortalUser("u", PROVIDER, ("demo",), lang), None, None, None, 0,
                         strings={"de": {"hi": "Hallo {name}"}, "en": {"hi": "Hello {name}", "only": "English"}}, **kw)


def test_a_provider_sees_only_its_profiles_an_operator_all():
    """``may_see`` is the rule the server applies to every profile in a URL."""
    assert PortalUser("p", PROVIDER, ("demo",)).may_see("demo")
    assert not PortalUser("p", PROVIDER, ("demo",)).may_see("other")
    assert PortalUser("o", OPERATOR).may_see("other")


def test_money_has_its_currency_and_two_decimals_in_the_users_language():
    """1.234,56 € in German, €1,234.56 in English; negative amounts keep their sign."""
    assert ctx("de").money(123456) == "1.234,56 €" and ctx("de").money(-5) == "-0,05 €"
    assert ctx("en").money(123456) == "€1,234.56"


def test_texts_fall_back_to_english_and_take_values():
    """A key the user's language lacks is said in English; values are filled in."""
    assert ctx("de").t("hi", name="Max") == "Hallo Max"
    assert ctx("de").t("only") == "English"


def test_times_are_shown_in_the_profiles_zone():
    """2027-01-15 08:00 UTC is 09:00 in Berlin (winter), written the user's way."""
    assert ctx("de").when(1_800_000_000_000) == "15.01.2027 09:00"
    assert ctx("en").when(1_800_000_000_000) == "2027-01-15 09:00"


def test_amounts_typed_either_way_are_read():
    """"12,50", "12.50" and "1.234,50 €" are amounts; "abc" and "nan" are none."""
    assert str(ctx().decimal_amount("12,50")) == "12.50" and str(ctx().decimal_amount("12.50")) == "12.50"
    assert str(ctx().decimal_amount("1.234,50 €")) == "1234.50"
    assert ctx().decimal_amount("abc") is None and ctx().decimal_amount("nan") is None


def test_links_stay_within_the_profile():
    """``url`` builds links under the profile's prefix, leaving out empty arguments."""
    c = ctx(base="/p/demo")
    assert c.url("customers", q="0151", page="") == "/p/demo/customers?q=0151"
    assert c.url() == "/p/demo/"
