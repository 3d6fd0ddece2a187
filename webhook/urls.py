"""The public URLs a payment provider is given or told: built here alone, from ``public_url`` (never a Host header).

The page sends them with each payment; ``prepaid payments urls`` prints the same for an operator to
register at the provider. A ``{reference}`` is ours per payment; paysafecard fills in its own ``{payment_id}``.
"""

from __future__ import annotations

from dataclasses import dataclass

#: paysafecard replaces this in the notification URL with the payment's id
PAYSAFECARD_PAYMENT_ID = "{payment_id}"


def notify_url(base: str, method: str) -> str:
    """Where ``method`` notifies us (a webhook: POST)."""
    url = f"{base.rstrip('/')}/hooks/{method}"
    return url + f"?payment_id={PAYSAFECARD_PAYMENT_ID}" if method == "paysafecard" else url


def return_url(base: str, button: str, reference: str, query: str = "") -> str:
    """Where the customer comes back to after paying."""
    return f"{base.rstrip('/')}/topup/{button}/return/{reference}" + (f"?{query}" if query else "")


def cancel_url(base: str, button: str, reference: str, query: str = "") -> str:
    """Where the customer comes back to after cancelling at the provider."""
    return f"{base.rstrip('/')}/topup/{button}/cancel/{reference}" + (f"?{query}" if query else "")


def page_url(base: str, button: str) -> str:
    """The top-up page (``prepaid button`` prints the iframe around it)."""
    return f"{base.rstrip('/')}/topup/{button}"


@dataclass(frozen=True)
class ProviderUrl:
    """One URL of a profile at one provider; ``register``: where the operator enters it ('' when it goes with
    each payment and there is nothing to register)."""

    method: str
    role: str
    url: str
    register: str = ""


#: where each provider is told of its webhook
_WEBHOOK = {
    "paypal": ("webhook", "PayPal Developer Dashboard > Apps & Credentials > your REST app > Webhooks > Add Webhook, "
                          "event types PAYMENT.CAPTURE.COMPLETED, .DENIED, .PENDING, .REFUNDED, .REVERSED; "
                          "copy its Webhook ID to webhook_id in the secrets file"),
    "klarna": ("status_update", ""),
    "paysafecard": ("notification", ""),
}


def provider_urls(base: str, button: str, methods, reference: str = "{reference}") -> tuple[ProviderUrl, ...]:
    """Every URL each of ``methods`` gets for the profile with ``button``, webhook first."""
    out = []
    for method in methods:
        role, register = _WEBHOOK[method]
        out.append(ProviderUrl(method, role, notify_url(base, method), register))
        out.append(ProviderUrl(method, "return", return_url(base, button, reference)))
        out.append(ProviderUrl(method, "cancel", cancel_url(base, button, reference)))
    return tuple(out)
