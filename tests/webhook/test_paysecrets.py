"""The secrets file checked against the accounts the profiles name (b2bua.node.paysecrets, its sans-I/O core)."""

from __future__ import annotations

from b2bua.node.paysecrets import Need, check_secrets, read_secrets
from b2bua.node.schema import ConfigProblem
from webhook.settings import MerchantAccount

from .conftest import SECRETS

NEEDS = (Need("demo", "paypal", "demo-paypal"), Need("demo", "klarna", "demo-klarna"),
         Need("demo", "paysafecard", "demo-paysafecard"))


def problems(text: str, needs=NEEDS) -> list[str]:
    return [str(p) for p in check_secrets(text, "s.toml", needs).problems]


def test_complete_file_has_no_problem_and_every_account():
    """Complete credentials for the three methods: no problem, nothing off, the accounts as MerchantAccounts."""
    report = check_secrets(SECRETS, "s.toml", NEEDS)
    assert report.problems == () and report.off == ()
    assert MerchantAccount("demo-paypal", "pp-client", "pp-secret", "WH-1") in report.accounts
    assert report.usable("demo", {"paypal": "demo-paypal"}) == {"paypal": "demo-paypal"}


def test_missing_account_names_the_profile_key_that_wants_it():
    """An account a profile names that the file lacks: `file:accounts.NAME: missing (named by ...)`, method off."""
    text = SECRETS.replace("[accounts.demo-klarna]", "[accounts.other-klarna]")
    report = check_secrets(text, "s.toml", NEEDS)
    assert [str(p) for p in report.problems] == [
        "s.toml:accounts.demo-klarna: missing (named by profiles.demo.payments.klarna)"]
    assert [(o.profile, o.method) for o in report.off] == [("demo", "klarna")]
    assert report.usable("demo", {"paypal": "a", "klarna": "b"}) == {"paypal": "a"}


def test_incomplete_accounts_name_the_missing_key_per_method():
    """PayPal needs its webhook_id, Klarna its username, paysafecard its key; an empty string is missing too."""
    text = (SECRETS.replace('webhook_id = "WH-1"\n', "").replace('client_id = "K123456_abc"', 'client_id = ""')
            .replace('secret = "psc_test_key"', ""))
    found = problems(text)
    assert found == [
        "s.toml:accounts.demo-paypal.webhook_id: missing: the Webhook ID PayPal shows for the webhook registered at "
        "/hooks/paypal (profiles.demo.payments.paypal)",
        "s.toml:accounts.demo-klarna.client_id: missing: the Klarna API username (UID) (profiles.demo.payments.klarna)",
        "s.toml:accounts.demo-paysafecard.secret: missing: the paysafecard API key "
        "(profiles.demo.payments.paysafecard)"]


def test_wrong_type_unknown_key_and_bad_toml():
    """A number where a string belongs, a misspelt key (`client_secret`), a file that is no TOML: each named."""
    found = problems(SECRETS.replace('secret = "psc_test_key"', "secret = 1234")
                     .replace('secret = "pp-secret"', 'client_secret = "pp-secret"'))
    assert "s.toml:accounts.demo-paysafecard.secret: must be a string" in found
    assert "s.toml:accounts.demo-paypal.client_secret: unknown key (an account has client_id, secret, webhook_id)" \
        in found
    assert any(p.startswith("s.toml:accounts.demo-paypal.secret: missing") for p in found)
    assert len(found) == 3
    bad = check_secrets("[accounts", "s.toml", NEEDS)
    assert len(bad.problems) == 1 and str(bad.problems[0]).startswith("s.toml:(syntax): not valid TOML")
    assert len(bad.off) == 3


def test_no_file_and_unreadable_file(tmp_path):
    """No file configured: the given problem once, every method off; a file that cannot be read: `(file)`."""
    unset = ConfigProblem("p.toml", "payments.secrets_file", "not set")
    report = read_secrets("", NEEDS, unset=unset)
    assert report.problems == (unset,) and len(report.off) == 3
    gone = tmp_path / "gone.toml"
    report = read_secrets(str(gone), NEEDS, unset=unset)
    assert [str(p) for p in report.problems] == [f"{gone}:(file): cannot read: No such file or directory"]
    assert read_secrets("", (), unset=unset).problems == ()
