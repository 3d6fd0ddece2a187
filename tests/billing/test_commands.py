"""The operator commands in the forms docs/commands.md promises, on SQLite and PostgreSQL: output, --json fields,
exit codes."""

from __future__ import annotations

import json
import os

import pytest

from b2bua.node.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NUM = "+4915112345678"


@pytest.fixture
def cfg(store_url, tmp_path):
    """The example config with its store pointed at this test's database (migrated, as `prepaid db upgrade`)."""
    with open(os.path.join(ROOT, "conf", "prepaid.toml"), encoding="utf-8") as f:
        text = f.read()
    assert 'url = "sqlite:///../var/prepaid.db"' in text
    path = tmp_path / "prepaid.toml"
    path.write_text(text.replace('url = "sqlite:///../var/prepaid.db"', f"url = {json.dumps(store_url)}"))
    assert main(["db", "upgrade", "--config", str(path)]) == 0
    return str(path)


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *argv):
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def test_topup_with_national_number_applies_bonus(cfg, capsys):
    """`topup --profile demo "0151 12345678" 10` credits 10.00 plus the 1.00 bonus to the E.164 number."""
    code, out, err = run(capsys, "topup", "--config", cfg, "--profile", "demo", "0151 12345678", "10", "--note", "phone")
    assert code == 0, err
    assert NUM in out and "11.00" in out
    data = run_json(capsys, "balance", "--config", cfg, "--profile", "demo", NUM)
    assert (data["number"], data["balance_cents"]) == (NUM, 1100)


def test_topup_twice_is_two_topups(cfg, capsys):
    """Each manual top-up gets its own reference: two commands are two credits."""
    for _ in range(2):
        assert run(capsys, "topup", "--config", cfg, "--profile", "demo", NUM, "12.50")[0] == 0
    assert run_json(capsys, "balance", "--config", cfg, "--profile", "demo", NUM)["balance_cents"] == 2500


def test_balance_of_unknown_caller_is_zero(cfg, capsys):
    """A caller without an account has balance 0 (and account false), not an error."""
    data = run_json(capsys, "balance", "--config", cfg, "--profile", "demo", "030 1234567")
    assert data == {"profile": "demo", "number": "+49301234567", "balance_cents": 0, "currency": "EUR",
                    "account": False, "pin": None}


def test_customers_json_fields(cfg, capsys):
    """customers --json lists number, balance_cents, topups and last_topup_at, filterable by number."""
    run(capsys, "topup", "--config", cfg, "--profile", "demo", NUM, "20")
    run(capsys, "adjust", "--config", cfg, "--profile", "demo", "+49301234567", "5", "--note", "goodwill")
    rows = run_json(capsys, "customers", "--config", cfg, "--profile", "demo")
    by_number = {r["number"]: r for r in rows}
    assert by_number[NUM]["balance_cents"] == 2300 and by_number[NUM]["topups"] == 1
    assert by_number[NUM]["last_topup_at"].endswith("Z")
    assert by_number["+49301234567"]["topups"] == 0 and by_number["+49301234567"]["last_topup_at"] is None
    only = run_json(capsys, "customers", "--config", cfg, "--number", "0151-12345678")
    assert [r["number"] for r in only] == [NUM]
    code, out, _ = run(capsys, "customers", "--config", cfg)
    assert code == 0 and "23.00" in out and "last top-up" in out


def test_transactions_json_newest_first_and_kind_filter(cfg, capsys):
    """transactions --json gives kind, amount_cents, balance_after_cents and at, newest first; --kind filters."""
    run(capsys, "topup", "--config", cfg, "--profile", "demo", NUM, "10")
    run(capsys, "adjust", "--config", cfg, "--profile", "demo", NUM, "2.50", "--debit", "--note", "fax service")
    rows = run_json(capsys, "transactions", "--config", cfg, "--profile", "demo", "--number", NUM)
    assert [(r["kind"], r["amount_cents"], r["balance_after_cents"]) for r in rows] == [
        ("manual", -250, 850), ("bonus", 100, 1100), ("topup", 1000, 1000)]
    assert rows[0]["note"] == "fax service" and rows[0]["at"].startswith("20")
    topups = run_json(capsys, "transactions", "--config", cfg, "--kind", "topup")
    assert [r["kind"] for r in topups] == ["topup"]
    assert run_json(capsys, "transactions", "--config", cfg, "--until", "2000-01-01") == []


def test_adjust_debit_beyond_balance_fails_and_changes_nothing(cfg, capsys):
    """adjust --debit more than the balance exits 1 with a reason on stderr and leaves the balance."""
    run(capsys, "adjust", "--config", cfg, "--profile", "demo", NUM, "3", "--note", "n")
    code, out, err = run(capsys, "adjust", "--config", cfg, "--profile", "demo", NUM, "3.01", "--debit", "--note", "n")
    assert code == 1 and out == "" and "3.00" in err
    assert run_json(capsys, "balance", "--config", cfg, "--profile", "demo", NUM)["balance_cents"] == 300


def test_renumber_refuses_then_merges(cfg, capsys):
    """renumber onto a number with an account exits 1 unless --merge, which joins the balances."""
    run(capsys, "topup", "--config", cfg, "--profile", "demo", NUM, "10")
    run(capsys, "adjust", "--config", cfg, "--profile", "demo", "0172 1234567", "1", "--note", "n")
    code, _, err = run(capsys, "renumber", "--config", cfg, "--profile", "demo", NUM, "0172 1234567")
    assert code == 1 and "merge" in err
    data = run_json(capsys, "renumber", "--config", cfg, "--profile", "demo", NUM, "0172 1234567", "--merge")
    assert (data["number"], data["merged"], data["balance_cents"]) == ("+491721234567", True, 1200)
    assert run_json(capsys, "balance", "--config", cfg, "--profile", "demo", NUM)["account"] is False


def test_calls_lists_records(cfg, capsys):
    """calls --json lists the caller's call records with their charge."""
    from billing.store import CallRecord, Store
    from tests.conftest import fired
    url = json.loads(open(cfg).read().split("\nurl = ", 1)[1].split("\n", 1)[0])
    s = Store.open(url, inline=True)
    fired(s.add_call_record(CallRecord("c1", "demo", "+493012345678", NUM, "from", False, "mobile", "sip:a@h",
                                       "sip:a@h", 1000, 2000, 62000, "caller hung up", 200, 200, 60, 249)))
    s.close()
    rows = run_json(capsys, "calls", "--config", cfg, "--profile", "demo", "0151 12345678")
    assert [(r["call_id"], r["billed_s"], r["charge_cents"]) for r in rows] == [("c1", 60, 249)]
    code, out, _ = run(capsys, "calls", "--config", cfg, "--profile", "demo", NUM)
    assert code == 0 and "2.49" in out


@pytest.mark.parametrize("argv, reason", [
    (("balance", "--profile", "nope", NUM), "no profile 'nope'"),
    (("balance", "--profile", "demo", "hello"), "not a phone number"),
    (("topup", "--profile", "demo", NUM, "12.345"), "not an amount"),
    (("topup", "--profile", "demo", NUM, "0"), "more than 0"),
    (("transactions", "--since", "yesterday"), "not a date"),
])
def test_bad_input_exits_2_with_reason(cfg, capsys, argv, reason):
    """Bad profile, number, amount or date: exit 2, the reason on stderr, nothing on stdout."""
    code, out, err = run(capsys, argv[0], "--config", cfg, *argv[1:])
    assert (code, out) == (2, "") and reason in err


def test_bad_config_exits_2(tmp_path, capsys):
    """A missing config file is reported as file:key: reason with exit 2."""
    code, _, err = run(capsys, "balance", "--config", str(tmp_path / "none.toml"), "--profile", "demo", NUM)
    assert code == 2 and "cannot read" in err


def test_statement_for_profile_and_provider_in_three_formats(cfg, capsys):
    """statement --profile/--provider --month prints a table, CSV or JSON whose net matches the top-ups and fees."""
    run(capsys, "topup", "--config", cfg, "--profile", "demo", NUM, "10")
    import datetime as dt
    month = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m")
    data = json.loads(run(capsys, "statement", "--config", cfg, "--profile", "demo",
                                "--month", month, "--format", "json")[1])
    assert data["totals"]["topup_cents"] == 1000 and data["totals"]["bonus_cents"] == 100
    assert data["totals"]["paid_topup_cents"] == 0  # a manual top-up is no payment: no fee
    assert data["reconciles"] is True
    code, out, _ = run(capsys, "statement", "--config", cfg, "--provider", "Demo Beratung GmbH", "--month", month)
    assert code == 0 and "Net payout" in out and "Top-ups manual (1)" in out
    code, out, _ = run(capsys, "statement", "--config", cfg, "--profile", "demo", "--month", month, "--format", "csv")
    assert code == 0 and out.startswith("month,profile,line,count,amount\n") and "topup:manual,1,10.00" in out
    assert data["profiles"][0]["provider"] == "Demo Beratung GmbH"


def test_statement_bad_month_and_provider(cfg, capsys):
    """A bad month or unknown provider exits 2 with the reason."""
    code, _, err = run(capsys, "statement", "--config", cfg, "--profile", "demo", "--month", "11/2026")
    assert code == 2 and "YYYY-MM" in err
    code, _, err = run(capsys, "statement", "--config", cfg, "--provider", "Nobody", "--month", "2026-11")
    assert code == 2 and "Demo Beratung GmbH" in err


def test_manual_money_over_the_profiles_limit_is_refused_and_nothing_booked(cfg, capsys):
    """topup and adjust (either way) over the profile's max_manual (500 EUR in the example) exit 1 with the
    limit in the reason, and book nothing; exactly the limit is booked."""
    for argv in (("topup", NUM, "500.01"), ("adjust", NUM, "501", "--note", "n"),
                 ("adjust", NUM, "501", "--debit", "--note", "n")):
        code, out, err = run(capsys, argv[0], "--config", cfg, "--profile", "demo", *argv[1:])
        assert code == 1 and out == "" and "500.00" in err and "max_manual" in err, err
    assert run_json(capsys, "transactions", "--config", cfg, "--profile", "demo") == []
    assert run(capsys, "topup", "--config", cfg, "--profile", "demo", NUM, "500")[0] == 0
    assert run_json(capsys, "balance", "--config", cfg, "--profile", "demo", NUM)["balance_cents"] == 50_000


def test_manual_money_from_the_command_writes_audit_rows(cfg, capsys):
    """Every booked topup/adjust writes an audit row (the operator, from cli) with the balance before and
    after; a refused debit writes none."""
    from billing.db import audit
    from b2bua.node.commands.db import fired, open_store
    from b2bua.node.config import load_config
    run(capsys, "topup", "--config", cfg, "--profile", "demo", NUM, "10", "--note", "phone")
    run(capsys, "adjust", "--config", cfg, "--profile", "demo", NUM, "2.50", "--debit", "--note", "<b>fix</b>")
    assert run(capsys, "adjust", "--config", cfg, "--profile", "demo", NUM, "99", "--debit", "--note", "x")[0] == 1
    store = open_store(load_config(cfg))
    try:
        rows = fired(store.run(audit.entries, profile="demo"))
    finally:
        store.close()
    assert [(a.source, a.action, a.subject, a.before, a.after) for a in rows] == [
        ("cli", "manual_topup", NUM, "0", "1100"), ("cli", "manual_debit", NUM, "1100", "850")]
    assert all(a.actor.startswith("operator") for a in rows)
    assert "topup=1000 bonus=100" in rows[0].detail and "note=<b>fix</b>" in rows[1].detail


def test_numbers_no_one_can_call_from_are_not_credited(cfg, capsys):
    """``0151123`` is a "possible" German number but no valid one: topup, a credit by adjust and renumber's new
    number exit 2 saying it is no valid number of DE, and nothing is booked; a debit looks the account up as
    it is (it can only find one that exists)."""
    for argv in (("topup", "0151123", "10"), ("adjust", "0151123", "5", "--note", "n"),
                 ("renumber", NUM, "0151123")):
        code, out, err = run(capsys, argv[0], "--config", cfg, "--profile", "demo", *argv[1:])
        assert (code, out) == (2, "") and "not a valid number of DE: '0151123'" in err, err
    assert run_json(capsys, "transactions", "--config", cfg, "--profile", "demo") == []
    code, _, err = run(capsys, "adjust", "--config", cfg, "--profile", "demo", "0151123", "5", "--debit", "--note", "n")
    assert code == 1 and "has no account" in err


def test_config_may_stand_before_or_after_the_command(cfg, capsys):
    """``prepaid --config X balance ...`` was refused; now both orders work, and one given after the command
    wins over one before it."""
    run(capsys, "topup", "--config", cfg, "--profile", "demo", NUM, "10")
    assert run_json(capsys, "--config", cfg, "balance", "--profile", "demo", NUM)["balance_cents"] == 1100
    code, _, err = run(capsys, "--config", cfg, "balance", "--profile", "demo", NUM, "--config", cfg + ".none")
    assert code == 2 and cfg + ".none" in err


def test_output_into_a_closed_pipe_ends_quietly(cfg):
    """``prepaid transactions | head`` ended in a BrokenPipeError traceback: now nothing is printed to standard
    error and the exit status is 141 (128 + SIGPIPE), as for any tool a closed pipe stops."""
    import subprocess
    import sys
    for i in range(3):
        assert main(["topup", "--config", cfg, "--profile", "demo", NUM, str(10 + i)]) == 0
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.Popen([sys.executable, "-m", "b2bua.node.cli", "transactions", "--config", cfg],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    proc.stdout.close()                      # the reader is gone before the command writes
    err = proc.stderr.read().decode()
    assert (proc.wait(timeout=60), err) == (141, "")


def test_tables_fit_100_columns_and_keep_every_word(cfg, capsys):
    """A call record with a long agent URI and end reason, and a transaction with a long note: every line of
    ``calls`` and ``transactions`` is at most 100 characters, the text columns wrap, and no word is lost."""
    from billing.store import CallRecord, Store
    from tests.conftest import fired
    url = json.loads(open(cfg).read().split("\nurl = ", 1)[1].split("\n", 1)[0])
    s = Store.open(url, inline=True)
    agent = "sip:agent-with-a-long-name@pbx.provider-with-a-long-domain.example.com:5061;transport=tls"
    reason = "the caller's credit was spent and the call was cut off after the warning"
    fired(s.add_call_record(CallRecord("c1", "demo", "+493012345678", NUM, "from", False, "mobile", agent,
                                       agent, 1000, 2000, 62000, reason, 200, 200, 60, 249)))
    s.close()
    note = "booked by hand after the caller phoned the hotline because the PayPal payment had failed twice"
    run(capsys, "topup", "--config", cfg, "--profile", "demo", NUM, "10", "--note", note)
    for argv in (("calls", "--profile", "demo", NUM), ("transactions", "--profile", "demo")):
        code, out, _ = run(capsys, argv[0], "--config", cfg, *argv[1:])
        assert code == 0 and max(len(line) for line in out.splitlines()) <= 100, out
    words = " ".join(out.split())
    assert all(word in words for word in note.split())


def test_a_table_wraps_prose_before_times_and_never_numbers():
    """The widest column with words is narrowed first; right-aligned numbers are never wrapped."""
    from b2bua.node.commands.db import table_lines
    lines = table_lines(("at", "amount", "note"), [("2026-11-29T02:30:00Z", "123456.78", "word " * 40)],
                        right=(1,), max_width=60)
    assert max(map(len, lines)) <= 60 and lines[2].startswith("2026-11-29T02:30:00Z  123456.78  word")
    assert " ".join(" ".join(lines[2:]).split()).count("word") == 40


def test_a_table_never_breaks_an_identifier_up_to_a_uuids_length():
    """A session id (36 characters) stays on one line even when the table is then wider than 100 columns."""
    from b2bua.node.commands.db import table_lines
    uuid = "41b58f77-9dcf-419c-b43c-411add90fbe4"
    lines = table_lines(("session", "profile", "number", "a", "b", "c"),
                        [(uuid, "demo", "+4930111222", "1" * 20, "2" * 20, "3" * 20)], right=(3, 4, 5))
    assert uuid in lines[2]
