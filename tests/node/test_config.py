"""The declared config schema: what `prepaid check-config` and a reload rely on."""

from __future__ import annotations

import os
from decimal import Decimal

import pytest

from b2bua.node.cli import main
from b2bua.node.config import load_config, parse_config
from b2bua.node.schema import ConfigInvalid
from billing.profile import ChargingStart, Increment, TopupOption

EXAMPLE = "conf/prepaid.toml"


def example_text() -> str:
    with open(EXAMPLE, encoding="utf-8") as f:
        return f.read()


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigInvalid) as info:
        parse_config(text, "x.toml")
    return [str(p) for p in info.value.problems]


def test_example_config_is_what_docs_config_md_promises():
    """The example serves SIP on 127.0.0.1:5060 UDP+TCP, HTTP on 8080, the portal on 8090, SQLite in var/, profile
    demo as docs/config.md says."""
    c = load_config(EXAMPLE)
    assert (c.sip.address, c.sip.udp_port, c.sip.tcp_port, c.sip.tls_port) == ("127.0.0.1", 5060, 5060, 0)
    assert [str(n) for n in c.trusted_carriers] == ["127.0.0.1/32"]
    assert (c.http.address, c.http.port) == ("127.0.0.1", 8080)
    assert (c.portal.address, c.portal.port) == ("127.0.0.1", 8090)
    # the example names the file relatively: it is the var/ beside conf/, wherever prepaid was started
    assert c.store.url == "sqlite:///" + os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(EXAMPLE))),
                                                      "var", "prepaid.db")
    demo = c.profiles["demo"]
    assert demo.service_numbers == ("+493012345678",)
    assert demo.agents == ("sip:agent@127.0.0.1:5070",)
    b = demo.billing
    assert (b.landline_per_minute, b.mobile_per_minute) == (Decimal("1.99"), Decimal("2.49"))
    assert b.increment == Increment(60, 60)
    assert b.charging_starts is ChargingStart.ANSWER
    assert b.warn_before_s == 120
    assert b.topups == (TopupOption(1000, 100), TopupOption(2000, 300), TopupOption(5000, 1000))
    assert demo.button == "demo"
    assert c.profile_for_number("+493012345678") is demo


def test_every_problem_is_reported_at_once_with_its_key():
    """Three independent mistakes give three `file:key: reason` lines, not just the first."""
    text = (example_text()
            .replace('udp_port = 5060', 'udp_port = 70000')
            .replace('landline_per_minute = "1.99"', 'landline_per_minute = "cheap"')
            .replace('increment = "60/60"', 'increment = "60"'))
    problems = problems_of(text)
    assert len(problems) == 3
    assert any(p.startswith("x.toml:sip.udp_port: must be at most 65535") for p in problems)
    assert any(p.startswith("x.toml:profiles.demo.landline_per_minute: not a decimal") for p in problems)
    assert any(p.startswith("x.toml:profiles.demo.increment: must be FIRST/NEXT") for p in problems)


def test_unknown_and_missing_keys_are_named():
    """A typo'd key is 'unknown key'; a required key left out is 'missing'."""
    text = example_text().replace('button = "demo"', 'buton = "demo"')
    problems = problems_of(text)
    assert "x.toml:profiles.demo.buton: unknown key" in problems
    assert any(p.startswith("x.toml:profiles.demo.button: missing") for p in problems)


def test_money_as_float_is_refused():
    """A tariff written as a TOML float (1.99) would round; it must be a quoted decimal."""
    problems = problems_of(example_text().replace('"2.49"', '2.49'))
    assert any("profiles.demo.mobile_per_minute" in p and "in quotes" in p for p in problems)


def test_cross_checks_service_number_and_button_unique():
    """The same service number or button in two profiles is refused, naming the other profile."""
    second = example_text().split("[profiles.demo]")[1].split("[profiles.demo.topups]")[0]
    text = example_text() + "\n[profiles.other]" + second
    problems = problems_of(text)
    assert any("profiles.other.service_numbers" in p and "profile demo" in p for p in problems)
    assert any("profiles.other.button" in p and "profile demo" in p for p in problems)


def test_lease_renewals_are_configured_and_checked_against_the_lease():
    """The example renews every 5 s; renewing less often than twice per lease is refused, naming the key."""
    assert load_config(EXAMPLE).store.renew_interval_s == 5
    problems = problems_of(example_text().replace("renew_interval_s = 5", "renew_interval_s = 31"))
    assert problems == ["x.toml:store.renew_interval_s: must be at most half of store.lease_s (a late renewal "
                        "must not let another node settle a live call)"]


def test_tls_ca_bundles_are_read_when_checked_and_a_bad_one_is_named_by_its_key(tmp_path):
    """``sip.tls_server_ca`` (the CAs our outgoing TLS trusts) and ``sip.tls_client_ca`` are read by
    check-config: a missing file or one without a PEM certificate is a problem under its own key, not a
    failed handshake at the first call. The key's old name ``tls_trusted_ca`` is told its new one."""
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    text = example_text().replace("# tls_server_ca = ", "tls_server_ca = ").replace(
        '"/etc/prepaid/tls/agents-ca.pem"', f'"{junk}"').replace(
        "# tls_client_ca = ", "tls_client_ca = ").replace('"/etc/prepaid/tls/carrier-ca.pem"',
                                                          f'"{tmp_path / "missing.pem"}"')
    problems = problems_of(text)
    assert problems == [f"x.toml:sip.tls_client_ca: CA bundle {tmp_path / 'missing.pem'}: No such file or directory",
                        f"x.toml:sip.tls_server_ca: CA bundle {junk}: no PEM certificate in it"]
    renamed = example_text().replace("# tls_server_ca = ", "tls_trusted_ca = ")
    assert problems_of(renamed) == ["x.toml:sip.tls_trusted_ca: unknown key: now sip.tls_server_ca"]
    assert parse_config(example_text(), "x.toml").sip.tls_server_ca == ""     # unset: the system's trust store


def test_toml_syntax_error_is_one_problem():
    assert problems_of("[sip\naddress=") [0].startswith("x.toml:(syntax): not valid TOML")


def test_check_config_command_exit_codes(tmp_path, capsys, monkeypatch):
    """`prepaid check-config` prints a summary and exits 0, or every problem and exits 2 (the example's
    merchant accounts given credentials through $PREPAID_SECRETS)."""
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('[accounts.demo-paypal]\nclient_id = "c"\nsecret = "s"\nwebhook_id = "w"\n'
                       '[accounts.demo-klarna]\nclient_id = "u"\nsecret = "p"\n[accounts.demo-paysafecard]\nsecret = "k"\n')
    monkeypatch.setenv("PREPAID_SECRETS", str(secrets))
    assert main(["check-config", EXAMPLE]) == 0
    assert "profile demo: +493012345678" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text(example_text().replace('address = "127.0.0.1"\nudp_port', 'address = "localhost"\nudp_port'))
    assert main(["check-config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:sip.address: not an IP address: 'localhost'" in err


def test_log_level_is_checked_and_filters_the_node_log():
    """``[node] log_level``: a bad value is named; "info" keeps a call's debug steps out of the log."""
    import io

    from twisted.logger import Logger

    from b2bua.node.app import log_observer

    assert load_config(EXAMPLE).log_level == "info"
    assert any("node.log_level" in p for p in problems_of(example_text().replace(
        'log_level = "info"', 'log_level = "chatty"')))
    out = io.StringIO()
    log = Logger(namespace="b2bua.call", observer=log_observer("info", out))
    log.debug("ringing agent {agent}", agent="sip:a@b")
    log.info("call ended")
    assert "ringing" not in out.getvalue() and "call ended" in out.getvalue()


def test_log_lines_are_written_as_twisteds_text_observer_writes_them():
    """The node's observer (its time prefix made once per second) writes exactly what Twisted's
    textFileLogObserver writes: plain events, events in another second, a failure with its traceback."""
    import io

    from twisted.logger import LogLevel, textFileLogObserver
    from twisted.python.failure import Failure

    from b2bua.node.app import log_observer

    try:
        1 / 0
    except ZeroDivisionError:
        failure = Failure()
    events = [dict(log_format="call {call_id}: {n} s", call_id="c1", n=60, log_time=1764403200.25,
                   log_namespace="b2bua.call", log_level=LogLevel.info),
              dict(log_format="again", log_time=1764403200.75, log_namespace="b2bua.call", log_level=LogLevel.warn),
              dict(log_format="next second", log_time=1764403201.01, log_namespace="x", log_level=LogLevel.error),
              dict(log_format="failed", log_failure=failure, log_time=1764403262.5, log_namespace="x",
                   log_level=LogLevel.critical)]
    ours, theirs = io.StringIO(), io.StringIO()
    node, reference = log_observer("info", ours), textFileLogObserver(theirs)
    for event in events:
        node(dict(event))
        reference(dict(event))
    assert ours.getvalue() == theirs.getvalue()
    text = ours.getvalue()
    assert all(words in text for words in ("call c1: 60 s", "again", "next second", "ZeroDivisionError"))


def test_http_connection_limits_are_declared_and_reach_the_web_side():
    """``[http]`` header/body/idle timeouts and connection caps: the example's values reach the web side's
    ConnectionLimits; a value out of range is named with its key and reason."""
    import dataclasses

    from b2bua.node.webapp import web_settings
    from webhook.settings import ConnectionLimits

    c = load_config(EXAMPLE)
    unpaid = dataclasses.replace(c, profiles={n: dataclasses.replace(p, payments={}) for n, p in c.profiles.items()})
    assert web_settings(unpaid, environ={}).limits == ConnectionLimits(
        header_timeout_s=10, body_timeout_s=30, idle_timeout_s=60, max_connections=256, max_connections_per_source=32)
    problems = problems_of(example_text().replace("header_timeout_s = 10", "header_timeout_s = 0")
                           .replace("max_connections_per_source = 32", 'max_connections_per_source = "many"'))
    assert any(p.startswith("x.toml:http.header_timeout_s: must be at least 1") for p in problems)
    assert any(p.startswith("x.toml:http.max_connections_per_source:") for p in problems)


def test_public_url_is_required_where_payments_are_configured(tmp_path, capsys):
    """With a profile taking payments and `[http] public_url` empty, check-config names the key and its reason
    and exits 2, and `prepaid run` refuses to start; without payments it may stay empty; a URL that is no
    http(s) base URL is refused."""
    import subprocess
    import sys

    from tests.sipp.harness import _env, free_port
    from tests.sipp.node import write_config

    path = write_config(tmp_path, sip_port=free_port(), agents=["sip:agent@127.0.0.1:5070"],
                        sections={"http": {"public_url": '""'}})
    assert main(["check-config", str(path)]) == 2
    reason = f"{path}:http.public_url: needed when a profile takes payments (profiles.demo.payments)"
    assert reason in capsys.readouterr().err
    ran = subprocess.run([sys.executable, "-m", "b2bua.node.cli", "run", "--config", str(path)], cwd=tmp_path,
                         env=_env(), capture_output=True, text=True, timeout=30)
    assert ran.returncode == 2 and reason in ran.stderr
    unpaid = example_text().replace('public_url = "http://127.0.0.1:8080"', 'public_url = ""')
    assert parse_config(unpaid.split("[profiles.demo.payments]")[0], "x.toml").http.public_url == ""
    assert any(p.startswith("x.toml:http.public_url: must be an http:// or https:// URL") for p in problems_of(
        example_text().replace('"http://127.0.0.1:8080"', '"http://127.0.0.1:8080/?next=x"')))


def test_relative_file_names_are_the_config_folders_whatever_the_working_directory(tmp_path, monkeypatch):
    """A config in /x/conf naming ``../var/p.db``, ``secrets.toml``, ``prompts`` and a TLS file relatively
    reads /x/var/p.db, /x/conf/secrets.toml... from any working directory; absolute names, an in-memory
    SQLite and a PostgreSQL URL stay as they are."""
    with open(EXAMPLE, encoding="utf-8") as f:
        text = f.read()
    text = text.replace("[payments]\n", '[payments]\nsecrets_file = "secrets.toml"\n', 1)
    text = text.replace("[profiles.demo]\n", '[profiles.demo]\nprompts_dir = "../prompts"\n', 1)
    text = text.replace("[http]\n", '[http]\ntls_certificate = "/etc/tls/a.crt"\ntls_private_key = "tls/a.key"\n', 1)
    conf = tmp_path / "x" / "conf"
    conf.mkdir(parents=True)
    (conf / "prepaid.toml").write_text(text)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for given in (str(conf / "prepaid.toml"), os.path.relpath(conf / "prepaid.toml", elsewhere)):
        c = load_config(given)
        assert c.store.url == f"sqlite:///{tmp_path}/x/var/prepaid.db"
        assert c.payments.secrets_file == f"{tmp_path}/x/conf/secrets.toml"
        assert c.profiles["demo"].prompts_dir == f"{tmp_path}/x/prompts"
        assert (c.http.tls_certificate, c.http.tls_private_key) == ("/etc/tls/a.crt", f"{tmp_path}/x/conf/tls/a.key")
    for url in ("sqlite://", "sqlite:///:memory:", "postgresql+psycopg://root@127.0.0.1:5432/test",
                f"sqlite:///{tmp_path}/abs.db"):
        (conf / "prepaid.toml").write_text(text.replace('url = "sqlite:///../var/prepaid.db"', f'url = "{url}"'))
        assert load_config(str(conf / "prepaid.toml")).store.url == url


def test_agent_warning_is_words_or_tone_and_a_bad_value_names_the_key():
    """``agent_warning``: "words" by default (as the example says), "tone" accepted; anything else is refused
    with the key and the values it may take."""
    assert load_config(EXAMPLE).profiles["demo"].agent_warning == "words"
    text = example_text()
    unset = parse_config(text.replace('agent_warning = "words"\n', ""), "x.toml")
    assert unset.profiles["demo"].agent_warning == "words"
    assert parse_config(text.replace('agent_warning = "words"', 'agent_warning = "tone"'),
                        "x.toml").profiles["demo"].agent_warning == "tone"
    assert problems_of(text.replace('agent_warning = "words"', 'agent_warning = "beeps"')) == [
        "x.toml:profiles.demo.agent_warning: must be one of 'words', 'tone', not 'beeps'"]


def _tone_wav(path, seconds: float, rate: int = 16000) -> None:
    """A WAV of a 440 Hz tone (music to an operator)."""
    from tests.media.test_library import sine, write_wav
    write_wav(path, rate, 1, [sine(440, rate, seconds, amp=8000)])


@pytest.mark.parametrize("region, tone", [("DE", "de"), ("AT", "de"), ("CH", "de"), ("US", "us"), ("CA", "us"),
                                          ("GB", "uk"), ("FR", "de")])
def test_ringback_defaults_to_the_tone_of_the_default_region(region, tone):
    """A profile without ``ringback`` plays the tone of ``[sip] default_region``: DE/AT/CH the German, US/CA the
    American, GB the British, elsewhere the European (German) one; a profile's own setting wins."""
    text = example_text().replace('default_region = "DE"', f'default_region = "{region}"')
    assert parse_config(text, "x.toml").profiles["demo"].ringback == tone
    own = text.replace("[profiles.demo]\n", '[profiles.demo]\nringback = "none"\n', 1)
    assert parse_config(own, "x.toml").profiles["demo"].ringback == "none"


def test_a_ringback_music_file_is_the_config_folders_and_a_bad_one_is_refused_by_key(tmp_path):
    """``ringback = "music/hold.wav"`` is the config folder's file, read whole at check time; a file that is
    missing, not audio, or too long to keep is refused naming profiles.demo.ringback and why, and
    ``prepaid check-config`` exits 2 with that line."""
    conf = tmp_path / "conf"
    (conf / "music").mkdir(parents=True)
    _tone_wav(conf / "music" / "hold.wav", 1.0)
    text = example_text().replace("[profiles.demo]\n", '[profiles.demo]\nringback = "music/hold.wav"\n', 1)
    (conf / "prepaid.toml").write_text(text)
    assert load_config(str(conf / "prepaid.toml")).profiles["demo"].ringback == str(conf / "music" / "hold.wav")
    (conf / "music" / "hold.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really")
    with pytest.raises(ConfigInvalid) as info:
        load_config(str(conf / "prepaid.toml"))
    (problem,) = info.value.problems
    assert problem.key == "profiles.demo.ringback" and "hold.wav" in problem.reason
    assert main(["check-config", str(conf / "prepaid.toml")]) == 2
    (conf / "music" / "hold.wav").unlink()
    with pytest.raises(ConfigInvalid) as info:
        load_config(str(conf / "prepaid.toml"))
    assert [str(p) for p in info.value.problems] == [
        f"{conf / 'prepaid.toml'}:profiles.demo.ringback: not a music file to play: no such file: "
        f"{conf / 'music' / 'hold.wav'} (or one of 'de', 'us', 'uk', 'none')"]
    (problem,) = problems_of(text.replace('ringback = "music/hold.wav"', 'ringback = "fr"'))
    assert problem.startswith("x.toml:profiles.demo.ringback: not a music file to play: no such file")
    assert "'de', 'us', 'uk', 'none'" in problem


def test_a_ringback_longer_than_it_may_be_held_is_refused(tmp_path, monkeypatch):
    """Music longer than RINGBACK_FILE_MAX_S (held in memory, both codecs) is refused with its length."""
    import b2bua.node.config as config_module
    monkeypatch.setattr(config_module, "RINGBACK_FILE_MAX_S", 1)
    _tone_wav(tmp_path / "long.wav", 2.0, rate=8000)
    text = example_text().replace("[profiles.demo]\n", f'[profiles.demo]\nringback = "{tmp_path}/long.wav"\n', 1)
    (problem,) = problems_of(text)
    assert "lasts 2 s, more than the 1 s kept in memory" in problem


def test_media_workers_default_to_the_cores_but_one_and_need_a_pair_each():
    """``[media] workers``: unset, the cores but one (at least 1); 0 is allowed (everything in one process); a
    range with fewer pairs than workers is refused naming the key; it is read at start only."""
    from b2bua.node.config import RESTART_ONLY
    from media.workers import default_workers
    assert load_config(EXAMPLE).media.workers == default_workers() >= 1
    text = example_text().replace("silence_timeout_s = 60", "silence_timeout_s = 60\nworkers = 0")
    assert parse_config(text, "x.toml").media.workers == 0
    tiny = example_text().replace("rtp_port_max = 29999", "rtp_port_max = 20003").replace(
        "silence_timeout_s = 60", "silence_timeout_s = 60\nworkers = 3")
    assert any(p.startswith("x.toml:media.workers: RTP port range 20000..20003 has 2 pairs for 3") for p in
               problems_of(tiny))
    assert "media.workers" in RESTART_ONLY
