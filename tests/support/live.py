"""A real ``prepaid run`` whose config and secrets a test edits and reloads, with a fake PayPal in the test process.

:class:`LiveNode` starts the node (:func:`tests.sipp.node.start_node`: free ports, the example config)
with a secrets file of its own and ``[payments]`` pointing at a :class:`FakePayPal` served on the test
process's reactor; :meth:`LiveNode.reload` edits a file and sends SIGHUP, and returns the node's log
line about it; :meth:`LiveNode.http` asks the node over HTTP while the fake keeps serving (the reactor
is driven by :func:`tests.webhook.harness.run`). :meth:`LiveNode.top_up_through_the_page` is a caller's
whole top-up: the form, the confirmation, PayPal's approval, and the return page.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import treq
from twisted.internet import reactor
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.server import Site

from tests.sipp.harness import free_port
from tests.sipp.node import Node, start_node
from tests.webhook.fakes.paypal import FakePayPal
from tests.webhook.harness import LiteralResolver, Reply, run

FORM_KEY = "form-key-of-the-test-" + "x" * 24
WEBHOOK_ID = "WH-LIVE-RELOAD"


def secrets_text(client_id: str, secret: str, form_key: str = FORM_KEY) -> str:
    web = f'[web]\nform_key = "{form_key}"\n\n' if form_key else ""
    return (web + f'[accounts.demo-paypal]\nclient_id = "{client_id}"\nsecret = "{secret}"\n'
            f'webhook_id = "{WEBHOOK_ID}"\n')


class FakePayPalServer:
    """A FakePayPal listening on 127.0.0.1 in the test process (credentials first-client / first-secret)."""

    def __init__(self) -> None:
        self._resolver = reactor.nameResolver
        reactor.installNameResolver(LiteralResolver())
        self.fake = FakePayPal(reactor, client_id="first-client", secret="first-secret")
        self.port = reactor.listenTCP(0, Site(self.fake), interface="127.0.0.1")
        self.fake.base_url = f"http://127.0.0.1:{self.port.getHost().port}"
        self.pool = HTTPConnectionPool(reactor, persistent=False)
        self.client = treq.client.HTTPClient(Agent(reactor, pool=self.pool))

    def close(self) -> None:
        self.fake.stop()
        run(self.port.stopListening())
        reactor.installNameResolver(self._resolver)

    def http(self, method: str, url: str, *, form: dict | None = None, headers: dict | None = None) -> Reply:
        """One request, the reactor driven until it is answered (the fake serves meanwhile)."""
        async def go() -> Reply:
            h = {k: [v] for k, v in (headers or {}).items()}
            body = None
            if form is not None:
                body = urlencode(form).encode()
                h["Content-Type"] = ["application/x-www-form-urlencoded"]
            response = await self.client.request(method, url, data=body, headers=h, allow_redirects=False)
            content = await treq.content(response)
            out = {k.decode().lower(): v[0].decode() for k, v in response.headers.getAllRawHeaders()}
            return Reply(response.code, out, content)
        return run(go(), timeout_s=30.0)


@dataclass
class LiveNode:
    """A started node, the files it reads, and how to reach it."""

    node: Node
    secrets: Path
    http_port: int
    public_url: str
    paypal: FakePayPalServer
    reloads: list = field(default_factory=list)

    @property
    def config(self) -> Path:
        return self.node.config

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def reload(self, *, config=None, secrets: str | None = None, timeout_s: float = 15.0) -> str:
        """Edit the config (``config(text) -> text``) and/or replace the secrets file, SIGHUP the node, and
        return its log line about the reload (applied or refused)."""
        if config is not None:
            self.config.write_text(config(self.config.read_text()))
        if secrets is not None:
            self.secrets.write_text(secrets)
        since = time.monotonic()
        os.kill(self.node.proc.pid, signal.SIGHUP)
        deadline = since + timeout_s
        while time.monotonic() < deadline:
            for needle in ("config reloaded from", "config reload of"):      # applied, or refused
                seen = self.node.wait_line(needle, 0.0, since)
                if seen is not None:
                    return seen[1]
            time.sleep(0.05)
        raise AssertionError("no reload line in the node's log:\n" + "".join(l for _, l in self.node.lines)[-3000:])

    def http(self, method: str, path: str, **kw) -> Reply:
        return self.paypal.http(method, self.url + path, **kw)

    def form(self, button: str = "demo") -> tuple[Reply, str]:
        """The page and its form's token."""
        page = self.http("GET", f"/topup/{button}")
        match = re.search(rb'name="token" value="([^"]+)"', page.body)
        return page, match.group(1).decode() if match else ""

    def submit(self, token: str, number: str, amount_cents: int, *, confirm: bool = False,
               button: str = "demo", origin: str | None = None) -> Reply:
        fields = {"token": token, "lang": "de", "number": number, "amount": str(amount_cents), "method": "paypal"}
        if confirm:
            fields["confirm"] = "1"
        return self.http("POST", f"/topup/{button}", form=fields, headers={"Origin": origin or self.public_url})

    def top_up_through_the_page(self, number: str, amount_cents: int) -> Reply:
        """Form, pay (303 to PayPal), PayPal's approval (302 back to us), and our return page."""
        _, token = self.form()
        pay = self.submit(token, number, amount_cents, confirm=True)
        assert pay.status == 303, pay.body
        approved = self.paypal.http("GET", pay.headers["location"])
        assert approved.status == 302, approved.body
        back = urlsplit(approved.headers["location"])
        return self.http("GET", f"{back.path}?{back.query}")

    def stop(self) -> str:
        return self.node.stop()


def start_live_node(workdir: Path, paypal: FakePayPalServer, *, secrets: str | None = None,
                    public_url: str | None = None, http_port: int | None = None, **node_config) -> LiveNode:
    """A node on free ports whose [payments] use ``paypal`` and a secrets file in ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    secrets_path = workdir / "secrets.toml"
    if secrets is not None or not secrets_path.exists():
        secrets_path.write_text(secrets if secrets is not None else secrets_text("first-client", "first-secret"))
    http_port = http_port or free_port()
    public_url = public_url or f"http://127.0.0.1:{http_port}"
    sections = {name: dict(values) for name, values in node_config.pop("sections", {}).items()}
    sections.setdefault("http", {})["public_url"] = json.dumps(public_url)
    sections.setdefault("sip", {})["probe_interval_s"] = "0"
    sections.setdefault("payments", {}).update({
        "secrets_file": json.dumps(str(secrets_path)), "paypal_api_url": json.dumps(paypal.fake.base_url),
        "paypal_cert_origins": json.dumps([paypal.fake.base_url])})
    node_config.setdefault("agents", ["sip:agent@127.0.0.1:9"])
    node = start_node(workdir, http_port=http_port, sections=sections, **node_config).follow()
    return LiveNode(node, secrets_path, http_port, public_url, paypal)
