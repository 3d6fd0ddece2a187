"""HTTPS on the web port when a certificate and key are configured."""

from __future__ import annotations

import datetime
import ipaddress

import treq
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from twisted.internet import reactor, ssl
from twisted.web.client import Agent, BrowserLikePolicyForHTTPS, HTTPConnectionPool

from webhook.server import listen

from .harness import run


def test_https_serves_health_with_the_configured_certificate(sqlite_env, tmp_path):
    """listen() with PEM files serves TLS; a client trusting that certificate gets /healthz."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    (tmp_path / "web.crt").write_bytes(cert_pem)
    (tmp_path / "web.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                         serialization.PrivateFormat.TraditionalOpenSSL,
                                                         serialization.NoEncryption()))
    port = listen(sqlite_env.site, reactor, "127.0.0.1", 0, tls_certificate=str(tmp_path / "web.crt"),
                  tls_private_key=str(tmp_path / "web.key"))
    try:
        policy = BrowserLikePolicyForHTTPS(trustRoot=ssl.Certificate.loadPEM(cert_pem))
        client = treq.client.HTTPClient(Agent(reactor, contextFactory=policy,
                                              pool=HTTPConnectionPool(reactor, persistent=False)))

        async def fetch():
            r = await client.get(f"https://127.0.0.1:{port.getHost().port}/healthz")
            return r.code, await treq.content(r)
        assert run(fetch()) == (200, b"ok\n")
    finally:
        run(port.stopListening())
