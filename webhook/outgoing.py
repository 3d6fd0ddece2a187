"""Every call to a payment provider: treq on an injected reactor, a timeout, bounded retries.

Connection failures, timeouts and 5xx answers are tried again (``attempts``
in all, ``retry_delay_s`` apart); anything else is handed back as it came.
When every attempt failed, :class:`ProviderUnavailable` says why.
"""

from __future__ import annotations

import json as _json
from dataclasses import dataclass

import treq
from twisted.internet import task
from twisted.internet.defer import CancelledError, TimeoutError as DeferTimeout
from twisted.logger import Logger
from twisted.web.client import Agent, HTTPConnectionPool

log = Logger(namespace="webhook.outgoing")


class ProviderUnavailable(Exception):
    """The provider did not answer usefully within the attempts allowed."""


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes

    def json(self):
        """The body as JSON (ProviderUnavailable when it is not: a broken provider answer)."""
        try:
            return _json.loads(self.body)
        except ValueError:
            raise ProviderUnavailable(f"answer {self.status} is not JSON") from None


class Outgoing:
    """An HTTP client for provider APIs."""

    def __init__(self, reactor, *, timeout_s: float = 10.0, attempts: int = 3, retry_delay_s: float = 0.5,
                 agent=None) -> None:
        self.reactor = reactor
        self.timeout_s = timeout_s
        self.attempts = max(1, attempts)
        self.retry_delay_s = retry_delay_s
        if agent is None:
            pool = HTTPConnectionPool(reactor, persistent=True)
            pool.maxPersistentPerHost = 8
            agent = Agent(reactor, pool=pool)
        self.client = treq.client.HTTPClient(agent)

    async def request(self, method: str, url: str, *, what: str, **kwargs) -> Reply:
        """Send one request (treq keyword arguments), retrying as the module says; ``what`` names it in logs."""
        last = "no attempt"
        for attempt in range(1, self.attempts + 1):
            timed_out: list[bool] = []

            def on_timeout(result, _timeout):
                timed_out.append(True)
                return result
            try:
                d = self.client.request(method, url, **kwargs)
                d.addTimeout(self.timeout_s, self.reactor, onTimeoutCancel=on_timeout)
                response = await d
                body_d = treq.content(response)
                body_d.addTimeout(self.timeout_s, self.reactor, onTimeoutCancel=on_timeout)
                body = await body_d
            except (DeferTimeout, CancelledError):
                last = f"no answer within {self.timeout_s} s"
            except Exception as exc:  # connection refused, reset, DNS...
                last = (f"no answer within {self.timeout_s} s" if timed_out
                        else f"{type(exc).__name__}: {exc}")
            else:
                if response.code < 500:
                    return Reply(response.code, body)
                last = f"HTTP {response.code}"
            log.warn("{what}: attempt {attempt}/{attempts} failed: {reason}", what=what, attempt=attempt,
                     attempts=self.attempts, reason=last)
            if attempt < self.attempts:
                await task.deferLater(self.reactor, self.retry_delay_s, lambda: None)
        raise ProviderUnavailable(f"{what}: {last} (after {self.attempts} attempts)")
