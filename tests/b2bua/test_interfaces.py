"""The interfaces at the call's seams, and that the real thing and its test double both provide them whole.

Call control calls its media, legs and billing through these Protocols and nothing else (no ``getattr`` for
a method a fake might lack): each real class and each double must have every member, taking the declared
parameters by the same names (an implementation may take more, with defaults).
"""

from __future__ import annotations

import inspect
from typing import Protocol

import pytest

from b2bua.call import Call
from b2bua.callmedia import RelayCallMedia
from b2bua.callports import CallMedia, InboundLeg, OutboundLeg
from b2bua.legs import SipInboundLeg, SipOutboundLeg, UnreachableLeg
from billing.db.sessions import SqlSessionStore
from billing.session import NoObserver, SessionObserver, SessionStore
from media.engine import EngineSession, LocalEngine, LocalSession, MediaEngine, PlayHandle
from media.player import Playback
from media.workers import WorkerEngine, WorkerPlay, WorkerSession
from tests.billing.test_session import Controller
from tests.billing.test_session_harness import MemorySessionStore
from tests.support.callfakes import FakeA, FakeB, FakeMedia


def members(protocol: type) -> dict[str, object]:
    """The methods (name -> function) and data members (name -> None) a Protocol declares, its bases' too."""
    found: dict[str, object] = {}
    for cls in reversed(protocol.__mro__):
        if cls in (object, Protocol) or not getattr(cls, "_is_protocol", False):
            continue
        found.update({name: None for name in vars(cls).get("__annotations__", {})})
        found.update({name: value for name, value in vars(cls).items()
                      if inspect.isfunction(value) and not name.startswith("_")})
    return found


def parameters(function) -> list[inspect.Parameter]:
    return list(inspect.signature(function).parameters.values())[1:]


def sets_in_init(cls: type, name: str) -> bool:
    """Whether ``cls`` (or a base) sets ``self.<name>`` in its source, or has it as a class attribute."""
    for klass in cls.__mro__[:-1]:
        source = inspect.getsource(klass)
        if name in vars(klass) or f"self.{name} =" in source or f"self.{name}: " in source:
            return True
    return False


CASES = [
    (CallMedia, [RelayCallMedia, FakeMedia]),
    (InboundLeg, [SipInboundLeg, FakeA]),
    (OutboundLeg, [SipOutboundLeg, FakeB, UnreachableLeg]),
    (SessionStore, [SqlSessionStore, MemorySessionStore]),
    (SessionObserver, [Call, NoObserver, Controller]),
    (MediaEngine, [LocalEngine, WorkerEngine]),
    (EngineSession, [LocalSession, WorkerSession]),
    (PlayHandle, [Playback, WorkerPlay]),
]


@pytest.mark.parametrize("protocol, implementations", CASES, ids=[c[0].__name__ for c in CASES])
def test_the_real_thing_and_its_doubles_provide_the_whole_interface(protocol, implementations):
    declared = members(protocol)
    assert declared
    for cls in implementations:
        for name, function in declared.items():
            if function is None:        # a data member: set in __init__, so read it off the source
                assert sets_in_init(cls, name), (cls.__name__, name)
                continue
            implemented = inspect.getattr_static(cls, name, None)
            assert implemented is not None, f"{cls.__name__} lacks {protocol.__name__}.{name}"
            if isinstance(implemented, property):
                continue
            declared_params, params = parameters(function), parameters(implemented)
            assert [p.name for p in params[:len(declared_params)]] == [p.name for p in declared_params], \
                (cls.__name__, name)
            assert all(p.default is not inspect.Parameter.empty for p in params[len(declared_params):]), \
                (cls.__name__, name)
