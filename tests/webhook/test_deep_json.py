"""Payment notifications nested absurdly deep are refused with a 4xx, not a 500 (RecursionError)."""

from __future__ import annotations

import pytest

DEEP = b"[" * 30_000 + b"]" * 30_000


@pytest.mark.parametrize("path", ["/hooks/klarna", "/hooks/paysafecard"])
def test_a_deeply_nested_notification_is_400(sqlite_env, path):
    """The webhooks that parse before they verify use the depth-limited parser: 400, nothing credited."""
    reply = sqlite_env.call("POST", path, body=DEEP, headers={"Content-Type": "application/json"})
    assert reply.status == 400
