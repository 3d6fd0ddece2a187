"""Fixtures of the call manager tests on the wire."""

from __future__ import annotations

import pytest

from tests.support.calls import Wire


@pytest.fixture
def make_wire():
    """``make_wire(answer_mode="agent", **settings)``: a :class:`~tests.support.calls.Wire`, closed after the test."""
    wires = []

    def make(answer_mode: str = "agent", **kw) -> Wire:
        wire = Wire(answer_mode, **kw)
        wires.append(wire)
        return wire
    yield make
    for wire in wires:
        wire.close()
