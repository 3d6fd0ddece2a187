"""Each kind of setting changed in a running ``prepaid run`` and reloaded with SIGHUP: the page, a top-up, a call
and the CLI all see the new value; a restart-only change is named in the reload's log line and not applied.

Each test starts its own node (SQLite, free ports) with a secrets file and a fake PayPal in the test
process (:mod:`tests.support.live`), edits the files as an operator would, and sends SIGHUP.
"""

from __future__ import annotations

import json
import socket

import pytest

from tests.support.live import secrets_text, start_live_node
from tests.sipp.harness import SCENARIOS, SIPP, free_port, run_sipp, start_sipp

NUMBER = "+4915112345678"
OTHER = "+4915112345679"
CALLER = "+49301234567"
EXTRA_SERVICE = "+493099887766"


def extra_profile(agent: str = "sip:agent@127.0.0.1:9") -> str:
    """A second profile of the same provider: 6.00 a minute (10 cents a second) in 1/1 increments, button
    "extra", paid through the provider's PayPal account."""
    return (f'\n[profiles.extra]\nservice_numbers = ["{EXTRA_SERVICE}"]\nagents = {json.dumps([agent])}\n'
            'landline_per_minute = "6.00"\nmobile_per_minute = "6.00"\nincrement = "1/1"\n'
            'announce_tariff = false\nbutton = "extra"\nprovider = "Demo Beratung GmbH"\n\n'
            '[profiles.extra.topups]\n"5" = "0"\n\n[profiles.extra.payments]\npaypal = "demo-paypal"\n')


def without_extra(text: str) -> str:
    return text[:text.index("\n[profiles.extra]")] + "\n"


@pytest.fixture
def live(tmp_path, paypal):
    """Starts live nodes (``live(**start_live_node kwargs)``); stops them after, and their logs hold no
    traceback."""
    nodes = []

    def make(**kw):
        node = start_live_node(tmp_path / f"node{len(nodes)}", paypal, **kw)
        nodes.append(node)
        return node
    yield make
    for node in nodes:
        log = node.stop()
        assert "Traceback" not in log, log[-4000:]


def test_a_new_bonus_is_offered_and_credited_by_the_page_and_by_prepaid_topup(live):
    """10 EUR earned 1 EUR bonus; after the edit and SIGHUP it earns 4: the page offers 4, a top-up through the
    page (PayPal) credits 14.00, and `prepaid topup` credits 14.00 too."""
    node = live()
    page, _ = node.form()
    assert "10,00 EUR + 1,00 EUR Bonus" in page.body.decode()
    line = node.reload(config=lambda t: t.replace('"10" = "1"', '"10" = "4"'))
    assert "config reloaded from" in line and "not applied" not in line
    page, _ = node.form()
    assert "10,00 EUR + 4,00 EUR Bonus" in page.body.decode() and "1,00 EUR Bonus" not in page.body.decode()
    done = node.top_up_through_the_page(NUMBER, 1000)
    assert done.status == 200 and 'id="credited">14,00 EUR' in done.body.decode(), done.body
    assert node.node.balance_cents(NUMBER) == 1400
    node.node.topup(OTHER, "10")
    assert node.node.balance_cents(OTHER) == 1400


def test_a_profile_added_is_served_and_one_removed_is_404(live):
    """A profile added to the file has its page after the reload (404 before); removed again, 404."""
    node = live()
    assert node.http("GET", "/topup/extra").status == 404
    node.reload(config=lambda t: t + extra_profile())
    page = node.http("GET", "/topup/extra")
    assert page.status == 200 and "5,00 EUR" in page.body.decode()
    node.reload(config=without_extra)
    assert node.http("GET", "/topup/extra").status == 404
    assert node.http("GET", "/topup/demo").status == 200


def test_a_site_newly_allowed_to_frame_the_page_is_in_its_csp(live):
    """frame_ancestors gains https://shop.example: the page's CSP lists it after the reload, not before."""
    node = live()
    before = node.http("GET", "/topup/demo").headers["content-security-policy"]
    assert "frame-ancestors http://127.0.0.1:8081" in before and "shop.example" not in before
    node.reload(config=lambda t: t.replace('frame_ancestors = ["http://127.0.0.1:8081"]',
                                           'frame_ancestors = ["http://127.0.0.1:8081", "https://shop.example"]'))
    after = node.http("GET", "/topup/demo").headers["content-security-policy"]
    assert after.endswith("frame-ancestors http://127.0.0.1:8081 https://shop.example")


def test_new_credentials_in_the_secrets_file_are_used_after_the_reload(live, paypal):
    """The merchant moves to a new PayPal app: after the secrets file is edited and SIGHUP, the pay step asks
    PayPal for a token with the new client id (the old one is refused there now) and reaches PayPal."""
    node = live()
    _, token = node.form()
    assert node.submit(token, NUMBER, 1000, confirm=True).status == 303
    assert paypal.fake.client_ids == ["first-client"]
    paypal.fake.client_id, paypal.fake.secret = "second-client", "second-secret"
    node.reload(secrets=secrets_text("second-client", "second-secret"))
    _, token = node.form()
    pay = node.submit(token, NUMBER, 1000, confirm=True)
    assert pay.status == 303 and pay.headers["location"].startswith(paypal.fake.base_url + "/checkoutnow")
    assert paypal.fake.client_ids == ["first-client", "second-client"]


def test_a_restart_only_change_is_named_and_not_applied(live):
    """The HTTP port changed along with a tariff: the log line names http.port as not applied, the page is
    still served on the old port and nothing listens on the new one; the tariff is in force (check-config)."""
    node = live()
    new_port = free_port()
    line = node.reload(config=lambda t: t.replace(f"port = {node.http_port}", f"port = {new_port}"))
    assert "not applied until a restart: http.port" in line
    assert node.http("GET", "/healthz").status == 200
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", new_port), timeout=1).close()


def test_a_bad_file_is_refused_and_the_running_config_serves_on(live):
    """A bonus typed wrong: the reload is refused with file:key: reason, the page offers the old bonus."""
    node = live()
    line = node.reload(config=lambda t: t.replace('"10" = "1"', '"10" = "lots"'))
    assert "refused" in line
    refused = node.node.wait_line("profiles.demo.topups", 5)
    assert refused is not None and f"{node.config}:profiles.demo.topups" in refused[1]
    assert "10,00 EUR + 1,00 EUR Bonus" in node.form()[0].body.decode()


@pytest.mark.sipp
@pytest.mark.skipif(SIPP is None, reason="sipp is not installed")
def test_a_call_to_a_profile_added_by_reload_is_billed_on_its_tariff(live, tmp_path):
    """A profile added by reload takes calls: its service number rings its agent and the call is billed at its
    6.00 a minute in 1/1 increments (10 cents a second), not at the demo's 1.99 per started minute."""
    agent_port = free_port()
    node = live()
    node.reload(config=lambda t: t + extra_profile(f"sip:agent@127.0.0.1:{agent_port};transport=UDP"))
    done = node.node.prepaid("topup", "--profile", "extra", CALLER, "10")
    assert done.returncode == 0, done.stderr
    agent = start_sipp(str(SCENARIOS / "agent_answer.xml"), tmp_path, local_port=agent_port, timeout_s=40,
                       name="agent", extra=("-aa", "-d", "1000"))
    carrier = run_sipp(str(SCENARIOS / "carrier_call.xml"), tmp_path, remote=f"127.0.0.1:{node.node.sip_port}",
                       timeout_s=30, name="carrier",
                       extra=("-s", EXTRA_SERVICE, "-d", "4500", "-key", "from_header", f"<sip:{CALLER}@127.0.0.1>",
                              "-key", "extra", "X-Test: 1"))
    assert (carrier.successful, carrier.failed) == (1, 0), carrier.summary()
    assert agent.wait().successful == 1
    (record,) = node.node.records()
    assert (record["profile"], record["service_number"]) == ("extra", EXTRA_SERVICE)
    assert record["billed_s"] > 0 and record["charge_cents"] == 10 * record["billed_s"]
    assert node.node.rows("select balance_cents from accounts where profile = 'extra'")[0][0] == \
        1000 - record["charge_cents"]


def test_a_bad_recording_refuses_the_reload_and_the_old_prompts_and_tariffs_stay(live, tmp_path):
    """An operator's prompts folder with a broken recording: the reload is refused (named in the log), the
    bonus edited in the same file is not in force; the recording fixed by removing it, the next reload
    applies both."""
    folder = tmp_path / "prompts"
    folder.mkdir()
    (folder / "minuten.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really")
    node = live()

    def edit(text: str) -> str:
        return text.replace('"10" = "1"', '"10" = "4"').replace(
            'language = "de"', f'language = "de"\nprompts_dir = {json.dumps(str(folder))}', 1)
    line = node.reload(config=edit)
    assert "refused" in line
    named = node.node.wait_line("minuten.wav", 5)
    assert named is not None and f"{node.config}:profiles.demo.prompts_dir: cannot read prompt recording" in named[1]
    assert "10,00 EUR + 1,00 EUR Bonus" in node.form()[0].body.decode()
    (folder / "minuten.wav").unlink()
    assert "config reloaded from" in node.reload()
    assert "10,00 EUR + 4,00 EUR Bonus" in node.form()[0].body.decode()


def test_a_ringback_music_file_that_cannot_be_read_refuses_the_reload(live, tmp_path):
    """``ringback`` naming a broken music file: the reload is refused naming profiles.demo.ringback (the bonus
    edited with it is not in force); once the file plays, the next reload applies both."""
    from tests.media.test_library import sine, write_wav
    music = tmp_path / "hold.wav"
    music.write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really")
    node = live()

    def edit(text: str) -> str:
        return text.replace('"10" = "1"', '"10" = "4"').replace(
            'language = "de"', f'language = "de"\nringback = {json.dumps(str(music))}', 1)
    assert "refused" in node.reload(config=edit)
    named = node.node.wait_line("profiles.demo.ringback", 5)
    assert named is not None and f"{node.config}:profiles.demo.ringback: not a music file to play" in named[1]
    assert "10,00 EUR + 1,00 EUR Bonus" in node.form()[0].body.decode()
    write_wav(music, 8000, 1, [sine(440, 8000, 1.0)])
    assert "config reloaded from" in node.reload()
    assert "10,00 EUR + 4,00 EUR Bonus" in node.form()[0].body.decode()


def test_an_operator_reloads_a_running_node_from_its_portal(live, tmp_path):
    """`prepaid user add` makes an operator; logged in to the node's portal, "Reload config" puts an edited
    bonus in force on the node's page, says so with the new load time, and audits it; no SIGHUP is sent."""
    import re
    node = live()
    (tmp_path / "pw").write_text("correct horse battery\n")
    done = node.node.prepaid("user", "add", "olga", "--role", "operator", "--language", "en",
                             "--password-file", str(tmp_path / "pw"))
    assert done.returncode == 0, done.stderr
    ready = json.loads(next(line for line in "".join(node.node.output).splitlines() if line.startswith('{"ready"')))
    portal = f"http://127.0.0.1:{ready['ports']['portal']}"
    cookies: dict[str, str] = {}

    def visit(method: str, path: str, form: dict | None = None):
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())} if cookies else {}
        reply = node.paypal.http(method, portal + path, form=form, headers=headers)
        for name, value in re.findall(r"(?:^|, )([a-z_]+)=([^;,]*)", reply.headers.get("set-cookie", "")):
            cookies[name] = value
        return reply

    def csrf(reply) -> str:
        return re.search(r'name="csrf" value="([^"]+)"', reply.body.decode()).group(1)
    login = visit("GET", "/")
    assert visit("POST", "/login", {"csrf": csrf(login), "name": "olga", "password": "correct horse battery"}
                 ).status == 303
    page = visit("GET", "/reload")
    assert page.status == 200 and "Config loaded:" in page.body.decode()
    node.config.write_text(node.config.read_text().replace('"10" = "1"', '"10" = "4"'))
    result = visit("POST", "/reload", {"csrf": csrf(page)})
    assert result.status == 200 and "The new config is in force." in result.body.decode()
    assert "10,00 EUR + 4,00 EUR Bonus" in node.form()[0].body.decode()
    (row,) = node.node.rows("select actor, detail from audit where action = 'config_reload'")
    assert (row["actor"], row["detail"]) == ("portal:olga", "applied")
