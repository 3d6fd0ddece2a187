"""The demo's web side: the real HTTP server of ``webhook/`` on the demo node, and a PayPal that signs webhooks.

:class:`DemoPayPal` does for the demo what PayPal does for a real top-up's
notification: it holds an RSA key with a self-signed certificate, serves that
certificate on 127.0.0.1 (port 0), and signs a ``PAYMENT.CAPTURE.COMPLETED``
delivery the way PayPal does (RSA-SHA256 over
``transmission_id|time|webhook_id|crc32(body)``).  The demo's config lists its
origin in ``[payments] paypal_cert_origins`` and the secrets file gives the
demo merchant accounts, so the node's own ``/hooks/paypal`` checks the
signature, finds the payment we started and credits it with its bonus, exactly
as for PayPal.  Nothing here talks to the real PayPal.

The node serves the real web side itself (:class:`~b2bua.node.app.NodeWebSide`), with the demo's secrets.
"""

from __future__ import annotations

import base64
import datetime
from io import BytesIO
import json
import pathlib
import uuid

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from twisted.internet.defer import Deferred, inlineCallbacks, returnValue
from twisted.web.client import Agent, FileBodyProducer, readBody
from twisted.web.http_headers import Headers
from twisted.web.resource import Resource
from twisted.web.server import Site

from webhook.payments import Payments
from webhook.providers.paypal import signed_string

from b2bua.node.config import Config
from b2bua.node.webapp import web_settings

__all__ = ["DemoPayPal", "demo_secrets", "write_secrets", "paypal_topup", "WEBHOOK_ID"]

WEBHOOK_ID = "WH-PREPAID-DEMO"
CERT_PATH = b"demo-cert.pem"


def demo_secrets(account_names: set[str]) -> str:
    """A secrets file (TOML) with made-up credentials for each merchant account the demo profile names."""
    return "".join(f'[accounts.{json.dumps(name)}]\nclient_id = "demo"\nsecret = "demo"\n'
                   f'webhook_id = "{WEBHOOK_ID}"\n\n' for name in sorted(account_names))


class _Pem(Resource):
    isLeaf = True

    def __init__(self, pem: bytes) -> None:
        super().__init__()
        self.pem = pem

    def render_GET(self, request):
        request.setHeader(b"content-type", b"application/x-pem-file")
        return self.pem


class DemoPayPal:
    """A signing key, its certificate served over HTTP on 127.0.0.1, and PayPal-style signed deliveries."""

    def __init__(self, reactor) -> None:
        self.reactor = reactor
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "prepaid-demo-paypal")])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(days=1))
                     .not_valid_after(now + datetime.timedelta(days=7)).sign(self.key, hashes.SHA256()))
        self._listening = None
        self.origin: str | None = None

    def listen(self) -> str:
        """Serve the certificate; returns our origin (``http://127.0.0.1:PORT``)."""
        root = Resource()
        root.putChild(CERT_PATH, _Pem(self.cert.public_bytes(serialization.Encoding.PEM)))
        self._listening = self.reactor.listenTCP(0, Site(root), interface="127.0.0.1")
        self.origin = f"http://127.0.0.1:{self._listening.getHost().port}"
        return self.origin

    @property
    def cert_url(self) -> str:
        return f"{self.origin}/{CERT_PATH.decode()}"

    @staticmethod
    def capture_completed(capture_id: str, reference: str, amount_cents: int, currency: str) -> dict:
        """A ``PAYMENT.CAPTURE.COMPLETED`` event in PayPal's shape for our payment ``reference``."""
        value = f"{amount_cents // 100}.{amount_cents % 100:02d}"
        return {"id": f"WH-{uuid.uuid4().hex[:16]}", "event_version": "1.0", "resource_type": "capture",
                "event_type": "PAYMENT.CAPTURE.COMPLETED", "summary": f"Payment {value} {currency}",
                "resource": {"id": capture_id, "status": "COMPLETED",
                             "amount": {"currency_code": currency, "value": value},
                             "custom_id": reference, "invoice_id": reference, "final_capture": True, "links": []}}

    def sign(self, event: dict, webhook_id: str = WEBHOOK_ID) -> tuple[dict[str, str], bytes]:
        """(headers, raw body) of one delivery, signed as PayPal signs it."""
        body = json.dumps(event).encode()
        tid = str(uuid.uuid4())
        ttime = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        sig = self.key.sign(signed_string(tid, ttime, webhook_id, body), padding.PKCS1v15(), hashes.SHA256())
        return ({"PAYPAL-TRANSMISSION-ID": tid, "PAYPAL-TRANSMISSION-TIME": ttime,
                 "PAYPAL-TRANSMISSION-SIG": base64.b64encode(sig).decode(), "PAYPAL-AUTH-ALGO": "SHA256withRSA",
                 "PAYPAL-CERT-URL": self.cert_url, "Content-Type": "application/json"}, body)

    def stop(self):
        if self._listening is not None:
            listening, self._listening = self._listening, None
            return listening.stopListening()
        return None


@inlineCallbacks
def paypal_topup(reactor, config: Config, store, paypal: DemoPayPal, http_port: int, profile: str, number: str,
                 amount_cents: int):
    """Start a PayPal payment of ``amount_cents`` for ``number`` and deliver its signed capture to our
    ``/hooks/paypal``; fires with (HTTP status, the answer's JSON or its text)."""
    payments = Payments(store, web_settings(config, environ={}))
    payment = yield Deferred.fromCoroutine(payments.start(profile, number, amount_cents, "paypal"))
    event = DemoPayPal.capture_completed(f"DEMO-{uuid.uuid4().hex[:12].upper()}", payment.reference,
                                         amount_cents, payment.currency)
    headers, body = paypal.sign(event)
    response = yield Agent(reactor).request(
        b"POST", f"http://127.0.0.1:{http_port}/hooks/paypal".encode(),
        Headers({k: [v] for k, v in headers.items()}), FileBodyProducer(BytesIO(body)))
    text = yield readBody(response)
    try:
        answer = json.loads(text)
    except ValueError:
        answer = text.decode(errors="replace")
    returnValue((response.code, answer))


def write_secrets(folder: pathlib.Path, account_names: set[str]) -> pathlib.Path:
    """``folder/secrets.toml`` with :func:`demo_secrets`; returns its path."""
    path = folder / "secrets.toml"
    path.write_text(demo_secrets(account_names))
    return path
