"""The top-up form across processes: with one ``[web] form_key`` in the secrets file, a form served by node A is
accepted by node B (two ``prepaid run`` on one PostgreSQL), and a form served before a restart is accepted
after it; without a form_key the restart refuses it as expired (what operators saw before the key existed)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import require_postgres
from tests.support.live import secrets_text, start_live_node
from tests.sipp.harness import _env, free_port
from tests.sipp.node import write_config

NUMBER = "+4915112345678"
EXPIRED = "Das Formular ist abgelaufen"


@pytest.fixture
def nodes():
    """Live nodes started by the test, stopped after; their logs hold no traceback."""
    started: list = []
    yield started
    for node in started:
        log = node.stop()
        assert "Traceback" not in log, log[-4000:]


def confirmed(reply) -> bool:
    """The confirmation step (number shown back) rather than the form again."""
    return reply.status == 200 and 'id="national"' in reply.body.decode()


@pytest.mark.postgres
def test_a_form_served_by_one_node_is_accepted_by_the_other(tmp_path, paypal, nodes, pg_schema_url_factory):
    """Nodes a and b share a PostgreSQL store, the secrets file and the public URL (a load balancer's): the
    form node a served is posted to node b and b shows the confirmation; a token altered by one character
    is refused by b as expired."""
    require_postgres()
    url = pg_schema_url_factory()
    path = write_config(tmp_path, sip_port=free_port(), agents=["sip:agent@127.0.0.1:9"], store_url=url)
    done = subprocess.run([sys.executable, "-m", "b2bua.node.cli", "db", "upgrade", "--config", str(path)],
                          cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    public = f"http://127.0.0.1:{free_port()}"
    a = start_live_node(tmp_path / "a", paypal, public_url=public, store_url=url, node_id="a")
    nodes.append(a)
    b = start_live_node(tmp_path / "b", paypal, public_url=public, store_url=url, node_id="b")
    nodes.append(b)
    _, token = a.form()
    assert confirmed(b.submit(token, NUMBER, 1000)), "node b refused node a's form"
    forged = token[:-1] + ("0" if token[-1] != "0" else "1")
    refused = b.submit(forged, NUMBER, 1000)
    assert refused.status == 400 and EXPIRED in refused.body.decode()


def restart_and_post(tmp_path, paypal, nodes, secrets: str):
    """A node serves a form, is restarted (SIGTERM, then started again on the same port and files), and the
    form is posted to it: the answer."""
    port = free_port()
    first = start_live_node(tmp_path, paypal, secrets=secrets, http_port=port)
    _, token = first.form()
    log = first.stop()
    assert "Traceback" not in log, log[-4000:]
    again = start_live_node(tmp_path, paypal, http_port=port)
    nodes.append(again)
    return again.submit(token, NUMBER, 1000)


def test_a_form_served_before_a_restart_is_accepted_after_it(tmp_path, paypal, nodes):
    """With a form_key the restarted node shows the confirmation for the form its former self served."""
    assert confirmed(restart_and_post(tmp_path, paypal, nodes, secrets_text("first-client", "first-secret")))


def test_without_a_form_key_a_restart_refuses_the_open_form_and_the_node_says_why(tmp_path, paypal, nodes):
    """Without a form_key (as before) the restarted node refuses the form as expired, and its log says once
    that forms will not survive a restart."""
    reply = restart_and_post(tmp_path, paypal, nodes, secrets_text("first-client", "first-secret", form_key=""))
    assert reply.status == 400 and EXPIRED in reply.body.decode()
    node = nodes[-1].node
    assert node.wait_line("no [web] form_key", 10) is not None     # the node's output is read on a thread
    again = nodes[-1].submit("1.forged", NUMBER, 1000)             # another refused form: not said again
    assert again.status == 400
    said = [line for _, line in node.lines if "no [web] form_key" in line]
    assert len(said) == 1
