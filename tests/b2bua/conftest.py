"""Fixtures of the call manager tests on the wire."""

from __future__ import annotations

import pytest

import tests.support.callmedia as callmedia
from tests.support.calls import Wire


def pytest_generate_tests(metafunc):
    """A module with ``BOTH_ENGINES = True`` runs each test with the call's media in process and behind an
    (in-memory) media worker: the same CallMedia either way."""
    if getattr(metafunc.module, "BOTH_ENGINES", False) and "media_engine" in metafunc.fixturenames:
        metafunc.parametrize("media_engine", ["local", "worker"], indirect=True)


@pytest.fixture(autouse=True)
def media_engine(request):
    """The engine the :class:`tests.support.callmedia.Rig` s of this test run on ("local" unless parametrized)."""
    kind = getattr(request, "param", "local")
    callmedia.ENGINE = kind
    yield kind
    callmedia.ENGINE = "local"


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
