"""Fixtures of the node's tests."""

from __future__ import annotations

import pytest

from tests.support.live import FakePayPalServer


@pytest.fixture
def paypal():
    """A fake PayPal served on the test process's reactor (:class:`~tests.support.live.FakePayPalServer`),
    closed after the test."""
    server = FakePayPalServer()
    yield server
    server.close()
