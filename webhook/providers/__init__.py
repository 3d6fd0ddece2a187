"""Payment provider adapters behind one interface (:class:`Provider`)."""

from .base import (EventKind, PaymentEvent, PaymentRequest, Provider, Redirect, Rejected)
from .klarna import Klarna
from .paypal import PayPal
from .paysafecard import Paysafecard

__all__ = ["EventKind", "PaymentEvent", "PaymentRequest", "Provider", "Redirect", "Rejected",
           "PayPal", "Klarna", "Paysafecard"]
