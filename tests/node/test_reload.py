"""Reloading the config snapshot: a bad config or secrets file is reported and the running snapshot stays;
a good one is swapped whole (config, secrets, web settings, load time); restart-only keys are named and kept."""

from __future__ import annotations

import shutil

import pytest
from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher

from b2bua.node.config import SCHEMA, load_config
from b2bua.node.reload import ConfigHolder
from b2bua.node.snapshot import RESTART_ONLY, take_snapshot

SECRETS = '[accounts.demo-paypal]\nclient_id = "{cid}"\nsecret = "s"\nwebhook_id = "WH-1"\n'


@pytest.fixture
def files(tmp_path):
    """The example config naming a secrets file of its own, and that file (PayPal only)."""
    path = tmp_path / "prepaid.toml"
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(SECRETS.format(cid="first-client"))
    shutil.copy("conf/prepaid.toml", path)
    path.write_text(path.read_text().replace('# secrets_file = "/etc/prepaid/secrets.toml"',
                                             f'secrets_file = "{secrets}"'))
    return path, secrets


@pytest.fixture
def logged():
    events: list = []
    globalLogPublisher.addObserver(events.append)
    yield events
    globalLogPublisher.removeObserver(events.append)


def holder_for(path, clock: Clock) -> ConfigHolder:
    return ConfigHolder(take_snapshot(load_config(str(path)), now_ms=int(clock.seconds() * 1000), environ={}),
                        clock=clock, environ={})


def texts(events) -> list[str]:
    from twisted.logger import formatEvent
    return [formatEvent(e) for e in events]


def test_reload_keeps_running_config_when_new_file_is_bad(files, logged):
    """A reload of a file with an error logs file:key: reason and keeps the old snapshot (tariff, load time)."""
    path, _ = files
    clock = Clock()
    clock.advance(1000)
    holder = holder_for(path, clock)
    before = holder.snapshot
    seen = []
    holder.listen(lambda old, new: seen.append((old, new)))
    path.write_text(path.read_text().replace('"1.99"', '"one"'))
    clock.advance(5)
    result = holder.reload()
    assert result.applied is False and holder.snapshot is before and result.loaded_ms == 1_000_000
    assert (holder.applied, holder.refused) == (0, 1)
    assert str(holder.current.profiles["demo"].billing.landline_per_minute) == "1.99"
    assert seen == []
    assert f"{path}:profiles.demo.landline_per_minute: not a decimal number: 'one'" in result.problems
    assert (f"config reload refused: {path}:profiles.demo.landline_per_minute: not a decimal number: 'one'"
            in texts(logged))


def test_reload_applies_good_file_and_tells_listeners(files):
    """An edited tariff and bonus are in force after the reload, in the config and the web settings alike,
    with the reload's time; listeners get (old, new) snapshots."""
    path, _ = files
    clock = Clock()
    holder = holder_for(path, clock)
    seen = []
    holder.listen(lambda old, new: seen.append((old.config.profiles["demo"].billing.landline_per_minute,
                                                new.config.profiles["demo"].billing.landline_per_minute)))
    path.write_text(path.read_text().replace('"1.99"', '"2.09"').replace('"10" = "1"', '"10" = "2"'))
    clock.advance(42)
    result = holder.reload()
    assert result.applied and result.not_applied == () and holder.snapshot.loaded_ms == 42_000
    assert (holder.applied, holder.refused) == (1, 0)
    assert str(holder.current.profiles["demo"].billing.landline_per_minute) == "2.09"
    assert holder.snapshot.web.profile("demo").billing.bonus_cents(1000) == 200
    assert [(str(a), str(b)) for a, b in seen] == [("1.99", "2.09")]


def test_reload_rereads_the_secrets_file(files, logged):
    """New credentials in the secrets file are in the new snapshot; an account it stops naming turns its
    payment method off on the page (and is listed as unpaid); a method going off is logged once, not at
    every reload after."""
    path, secrets = files
    holder = holder_for(path, Clock())
    assert holder.snapshot.web.account("demo-paypal").client_id == "first-client"
    assert holder.snapshot.web.profile("demo").methods == ("paypal",)
    secrets.write_text(SECRETS.format(cid="second-client"))
    assert holder.reload().applied
    assert holder.snapshot.web.account("demo-paypal").client_id == "second-client"
    secrets.write_text('[accounts.demo-klarna]\nclient_id = "k"\nsecret = "s"\n')
    assert holder.reload().applied
    assert holder.snapshot.web.profile("demo").methods == ("klarna",)
    assert any(line.startswith("payment method paypal of profile demo is off") and
               "accounts.demo-paypal: missing (named by profiles.demo.payments.paypal)" in line
               for line in holder.snapshot.unpaid)
    assert holder.reload().applied
    off = [t for t in texts(logged) if "payment method paypal of profile demo is off" in t]
    assert len(off) == 1


def test_a_bad_secrets_file_refuses_the_reload(files):
    """A secrets file that does not parse refuses the whole reload, named file:key: reason, values unsaid."""
    path, secrets = files
    holder = holder_for(path, Clock())
    before = holder.snapshot
    path.write_text(path.read_text().replace('"1.99"', '"2.09"'))
    secrets.write_text('[accounts.demo-paypal]\nclient_id = 5\nsecret = "hush-hush"\n')
    result = holder.reload()
    assert not result.applied and holder.snapshot is before
    assert result.problems == (f"{secrets}:accounts.demo-paypal.client_id: must be a string",)
    secrets.write_text('[web]\nform_key = "short"\n')
    assert holder.reload().problems == (f"{secrets}:web.form_key: must be at least 32 characters (for example "
                                        "the output of `openssl rand -base64 32`)",)


def test_restart_only_changes_are_named_and_not_applied(files, logged):
    """A reload changing the HTTP port and the store URL along with a tariff: the tariff applies, the two
    keep their running values, and the log line names them."""
    path, _ = files
    holder = holder_for(path, Clock())
    text = path.read_text().replace('"1.99"', '"2.09"').replace("port = 8080", "port = 8181")
    path.write_text(text.replace('url = "sqlite:///../var/prepaid.db"', 'url = "sqlite:///../var/other.db"'))
    result = holder.reload()
    assert result.applied and result.not_applied == ("http.port", "store.url")
    config = holder.current
    assert config.http.port == 8080 and config.store.url.endswith("/var/prepaid.db")
    assert str(config.profiles["demo"].billing.landline_per_minute) == "2.09"
    assert f"config reloaded from {path}; not applied until a restart: http.port, store.url" in texts(logged)


def test_a_failing_check_refuses_the_reload(files):
    """A check run before the swap (the node's prompts) that raises keeps the old snapshot in force."""
    path, _ = files
    holder = holder_for(path, Clock())
    before = holder.snapshot

    def bad_prompts(new):
        raise OSError("prompts/de/euro.wav: no such file")
    holder.check(bad_prompts)
    path.write_text(path.read_text().replace('"1.99"', '"2.09"'))
    result = holder.reload()
    assert not result.applied and holder.snapshot is before
    assert result.problems == (f"{path}:(reload): OSError: prompts/de/euro.wav: no such file",)


def test_every_restart_only_key_is_a_config_key():
    """The one list of restart-only settings names keys the schema declares (no stale names)."""
    declared = {f"{section.name}.{field.name}" for section in SCHEMA.tables if section.name != "profiles"
                for field in section.fields}
    assert set(RESTART_ONLY) <= declared


def test_check_config_names_the_restart_only_settings(capsys, tmp_path, monkeypatch):
    """`prepaid check-config`'s summary lists every restart-only key under its section, within 100 columns."""
    from b2bua.node.cli import main
    from tests.webhook.conftest import SECRETS as COMPLETE
    (tmp_path / "secrets.toml").write_text(COMPLETE)       # the summary is printed when nothing is missing
    monkeypatch.setenv("PREPAID_SECRETS", str(tmp_path / "secrets.toml"))
    assert main(["check-config", "conf/prepaid.toml"]) == 0
    out = capsys.readouterr().out
    assert "restart only (a reload applies every other setting, names a change to these and leaves them):" in out
    block = out[out.index("restart only"):]
    for key in RESTART_ONLY:
        section, name = key.split(".")
        assert f"[{section}]" in block and f"{name}" in block
    assert "    [store] url, lease_s, reconcile_interval_s" in block
    assert max(len(line) for line in out.splitlines() if not line.startswith("  profile ")) <= 100


def test_load_snapshot_reads_both_files_or_names_the_problem(files, tmp_path):
    """``load_snapshot`` (what ``check-config`` and a start may use) gives the config with its secrets and the
    time given; a secrets file that cannot be read is named as file:(file): reason."""
    from b2bua.node.snapshot import load_snapshot
    from b2bua.node.schema import ConfigInvalid
    path, secrets = files
    snapshot = load_snapshot(str(path), now_ms=7, environ={})
    assert snapshot.loaded_ms == 7 and snapshot.secrets.path == str(secrets)
    assert [a.name for a in snapshot.secrets.accounts] == ["demo-paypal"]
    missing = tmp_path / "nowhere.toml"
    with pytest.raises(ConfigInvalid) as caught:
        load_snapshot(str(path), now_ms=7, environ={"PREPAID_SECRETS": str(missing)})
    assert [str(p) for p in caught.value.problems] == [f"{missing}:(file): cannot read: No such file or directory"]


def test_the_log_level_follows_a_reload(files):
    """``[node] log_level`` is live: after a reload to "debug" a call's debug step reaches the node's log,
    before it (at "info") it did not."""
    import io

    from twisted.logger import Logger, LogLevelFilterPredicate

    from b2bua.node.app import follow_log_level, log_observer
    path, _ = files
    holder = holder_for(path, Clock())
    out = io.StringIO()
    levels = LogLevelFilterPredicate()
    holder.listen(follow_log_level(levels))
    log = Logger(namespace="b2bua.call", observer=log_observer(holder.current.log_level, out, levels))
    log.debug("call c1: step one")
    path.write_text(path.read_text().replace('log_level = "info"', 'log_level = "debug"'))
    assert holder.reload().not_applied == ()
    log.debug("call c1: step two")
    assert "step one" not in out.getvalue() and "step two" in out.getvalue()


def test_agent_warning_follows_a_reload_to_the_next_call(files):
    """``agent_warning`` is a live profile setting: a reload from "words" to "tone" is applied (not restart-only),
    and the next call, routed by the router the app rebuilds from the new config, has the tone."""
    import dataclasses

    from b2bua.routing import Router
    from tests.support.calls import AGENT, Wire, bridged_call
    path, _ = files
    holder = holder_for(path, Clock())
    assert holder.current.profiles["demo"].agent_warning == "words"
    path.write_text(path.read_text().replace('agent_warning = "words"', 'agent_warning = "tone"'))
    result = holder.reload()
    assert result.applied and result.not_applied == ()
    profile = holder.current.profiles["demo"]
    assert profile.agent_warning == "tone"
    wire = Wire()
    try:
        # as the app's reload does: a Router of the new profiles (here ringing the wire's agent, answering with it)
        wire.manager.router = Router([dataclasses.replace(profile, agents=(f"sip:agent@127.0.0.1:{AGENT}",),
                                                          answer_mode="agent")], "DE")
        assert bridged_call(wire).agent_warning == "tone"
    finally:
        wire.close()
