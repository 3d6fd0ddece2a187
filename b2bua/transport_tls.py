"""TLS contexts for SIP over TLS (RFC 3261 §26.2), built with pyOpenSSL through ``twisted.internet.ssl``.

The server side presents ``sip.tls_certificate`` (a PEM chain: our certificate
first, intermediates after) with ``sip.tls_private_key``; with
``sip.tls_client_ca`` set, a peer must present a certificate signed by that CA
(mutual TLS with a carrier), else the handshake fails and the connection is
dropped.  The client side (our requests to ``sips:`` / ``transport=tls``
peers) presents the same certificate, and checks the peer's certificate
against ``sip.tls_server_ca`` when set, else against the system's trust store
(never against ``tls_client_ca``: a CA that signs carriers' client certificates
vouches for no server); the peer's IP address must be in its certificate.  A dialog's requests go back over the connection its peer
opened while that is open (:mod:`b2bua.sip.endpoint`), so a phone without a
certificate of its own is reached without a new TLS connection.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from twisted.internet import ssl

__all__ = ["TlsFiles", "TlsConfigError", "server_context", "client_context_factory", "ca_bundle_problem"]

_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----\s*", re.DOTALL)


class TlsConfigError(ValueError):
    """A certificate, key or CA file that cannot be read or does not fit."""


@dataclass(frozen=True)
class TlsFiles:
    """Paths of PEM files; empty strings mean "not configured"."""

    certificate: str
    private_key: str
    client_ca: str = ""
    server_ca: str = ""        # the CAs our outgoing connections trust (empty: the system's trust store)

    @property
    def enabled(self) -> bool:
        return bool(self.certificate and self.private_key)


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise TlsConfigError(f"{what} {path}: {exc.strerror or exc}") from None


def _certificates(pem: bytes, path: str, what: str) -> list[ssl.Certificate]:
    blocks = _PEM_CERT.findall(pem)
    if not blocks:
        raise TlsConfigError(f"{what} {path}: no PEM certificate in it")
    try:
        return [ssl.Certificate.loadPEM(block) for block in blocks]
    except Exception as exc:  # pyOpenSSL raises its own error types
        raise TlsConfigError(f"{what} {path}: {exc}") from None


def _own(files: TlsFiles) -> tuple[ssl.PrivateCertificate, list[ssl.Certificate]]:
    chain_pem = _read(files.certificate, "tls_certificate")
    key_pem = _read(files.private_key, "tls_private_key")
    chain = _certificates(chain_pem, files.certificate, "tls_certificate")
    try:
        own = ssl.PrivateCertificate.loadPEM(chain[0].dumpPEM() + key_pem)
    except Exception as exc:
        raise TlsConfigError(f"tls_private_key {files.private_key}: {exc}") from None
    return own, chain[1:]


def _cas(path: str, key: str) -> list[ssl.Certificate]:
    if not path:
        return []
    return _certificates(_read(path, key), path, key)


def ca_bundle_problem(path: str) -> str | None:
    """Why the CA bundle at ``path`` cannot be used (unreadable, no PEM certificate, one that does not parse),
    or None: ``check-config`` and the start say so under the key that names it, before any call needs it."""
    try:
        _cas(path, "CA bundle")
    except TlsConfigError as exc:
        return str(exc)
    return None


def server_context(files: TlsFiles) -> ssl.CertificateOptions:
    """The context factory of a TLS listener; raises TlsConfigError on unreadable or mismatched files."""
    own, extra = _own(files)
    cas = _cas(files.client_ca, "tls_client_ca")
    try:
        return ssl.CertificateOptions(
            privateKey=own.privateKey.original, certificate=own.original,
            extraCertChain=[c.original for c in extra] or None,
            verify=bool(cas), caCerts=[c.original for c in cas] or None, requireCertificate=bool(cas),
        )
    except Exception as exc:  # a key that does not match the certificate
        raise TlsConfigError(f"tls_certificate/tls_private_key: {exc}") from None


def client_context_factory(files: TlsFiles):
    """A function ``host -> IOpenSSLClientConnectionCreator`` for our outgoing TLS connections."""
    own = None
    if files.enabled:
        own, _ = _own(files)
    cas = _cas(files.server_ca, "tls_server_ca")
    trust = ssl.trustRootFromCertificates(cas) if cas else None     # None: the system's trust store

    def for_host(host: str):
        return ssl.optionsForClientTLS(host, trustRoot=trust, clientCertificate=own)
    return for_host
