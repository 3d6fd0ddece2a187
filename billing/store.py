"""The store: balances, the ledger and call records in SQL, as a Twisted-friendly async API.

Every method returns a Deferred firing with frozen dataclasses (see
:mod:`billing.db.rows`). The SQL runs on a thread pool, one ``thd`` function
per operation inside a transaction (the components in ``billing/db/``); other
parts add their own operations with :meth:`Store.run`.

    store = Store.open("sqlite:///var/prepaid.db", reactor, node_id="node-a")
    yield store.upgrade()
    result = yield store.topup(profile, "+4915112345678", 1000, source="paypal",
                               external_ref="PAY-1", actor="webhook:paypal")

Balance changes committed through this object are announced to
:meth:`Store.on_balance_changed` listeners on this node.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from .db import accounts as _accounts
from .db import audit as _audit
from .db import customer_list as _customer_list
from .db import overview as _overview
from .db import calls as _calls
from .db import engine as _engine
from .db import first_callers as _first_callers
from .db import ledger as _ledger
from .db import manual as _manual
from .db import near_numbers as _near
from .db.batch import RecordWriter
from .db.ledger import Line
from .db.pool import DBPool
from .db.rows import (Account, CallRecord, CreditResult, CustomerRow, DebitResult, LedgerEntry,
                      NoAccount, NumberTaken, RenumberResult, ReverseResult, Shortfall, StoreError)
from .events import BalanceEvents, BalanceWatcher
from .observe import JobTiming, Listeners, Topup
from .profile import BillingProfile

__all__ = ["Store", "Account", "CallRecord", "CreditResult", "CustomerRow", "DebitResult", "LedgerEntry",
           "NoAccount", "NumberTaken", "RenumberResult", "ReverseResult", "Shortfall", "StoreError"]

#: threads (and PostgreSQL connections) per store; SQLite writers queue on one lock anyway
DEFAULT_THREADS = {"sqlite": 1, "postgresql": 8}
#: the ledger kinds of a manual transaction that are top-ups (a correction is not)
TOPUP_KINDS = ("topup", "api_credit")


class Store:
    """The async facade over the SQL store. Make one with :meth:`open`."""

    log = Logger()

    def __init__(self, pool: DBPool, *, url: str, node_id: str = "", clock=None) -> None:
        self.pool = pool
        self.url = url
        self.node_id = node_id
        self._clock = clock
        self.events = BalanceEvents()
        self._topups: Listeners[Topup] = Listeners()
        #: call records go to the store in batches (see billing/db/batch.py)
        self.records = RecordWriter(pool, None if pool.inline else pool.reactor)

    @property
    def listener_failures(self) -> int:
        """Exceptions out of the store's listeners (balance news, top-ups, job timings), logged where caught."""
        return self.events.failures + self._topups.failures + self.pool.timer.listeners.failures

    @classmethod
    def open(cls, url: str, reactor=None, *, node_id: str = "", threads: int | None = None,
             inline: bool = False) -> "Store":
        """A store on ``url`` (``sqlite:///path`` or ``postgresql+psycopg://...``).

        ``reactor`` gives the thread pool its home and the time for ledger rows
        (``reactor.seconds()``, so a ``task.Clock`` works). With ``inline=True``
        or no reactor, the SQL runs in the caller's thread and every Deferred
        has fired on return (operator commands, unit tests).
        """
        backend = "sqlite" if _engine.is_sqlite(url) else "postgresql"
        threads = threads or DEFAULT_THREADS[backend]
        engine = _engine.create_engine(url, pool_size=threads)
        pool = DBPool(engine, reactor, threads=threads, inline=inline)
        return cls(pool, url=url, node_id=node_id, clock=reactor)

    def now_ms(self) -> int:
        """Milliseconds since the epoch by the reactor's clock (the wall clock without one)."""
        seconds = self._clock.seconds() if self._clock is not None else time.time()
        return int(round(seconds * 1000))

    def close(self) -> None:
        """Write the call records still waiting, stop the thread pool and close the connections."""
        self.records.close()
        self.pool.close()

    def run(self, thd: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred:
        """Run ``thd(conn, *args, **kwargs)`` in one transaction on the pool; fires with its result.

        The way other parts add their own operations. A ``thd`` that changes a
        balance should then call :meth:`announce` for it (on the reactor thread).
        """
        return self.pool.transaction(thd, *args, **kwargs)

    def run_soon(self, thd: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred:
        """:meth:`run`, for work that need not start at once (a debit ahead, a settlement, lease renewals):
        it goes to the store's thread with the next other work, ``pool.soon_s`` later at the latest, and
        shares that work's wake-up and COMMIT (:meth:`billing.db.pool.DBPool.transaction_soon`)."""
        return self.pool.transaction_soon(thd, *args, **kwargs)

    def run_engine(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred:
        """Run ``fn(engine, *args, **kwargs)`` on the pool: for operations that manage their own transactions."""
        return self.pool.do(fn, *args, **kwargs)

    def upgrade(self) -> Deferred:
        """Bring the schema to the newest migration (Alembic ``head``)."""
        return self.pool.do(_engine.upgrade)

    # -- balance news ------------------------------------------------------------

    def on_balance_changed(self, callback: Callable[[str, str, int], None]) -> Callable[[], None]:
        """Call ``callback(profile, number, balance_cents)`` after every committed balance change.

        Returns a function that stops the calls.
        """
        return self.events.listen(callback)

    def announce(self, profile: str, number: str, balance_cents: int) -> None:
        """Tell the listeners that a balance changed (for changes made through :meth:`run`)."""
        self.events.announce(profile, number, balance_cents)

    def watch_balances(self, interval_s: float = 2.0, margin_ms: int = 5000, *, listen: bool = True,
                       threads_reactor=None) -> BalanceWatcher:
        """Also announce balance changes made by other nodes and commands; returns the started watcher.

        Polls every ``interval_s``; on PostgreSQL with ``listen`` it also hears
        the NOTIFY of migration 0004 at once, on a thread of its own whose news
        reaches the reactor by ``callFromThread`` of ``threads_reactor`` (default:
        the store's reactor). ``watcher.stop()`` stops both.
        """
        watcher = BalanceWatcher(self.events, lambda since_ms: self.run(_accounts.changed_since, since_ms),
                                 self._clock, interval_s=interval_s, margin_ms=margin_ms).start()
        if listen and not _engine.is_sqlite(self.url):
            from .db.notify import PgBalanceListener
            listener = PgBalanceListener(self.url, threads_reactor or self._clock, watcher.offer).start()
            watcher.listener = listener
            watcher.also_stop(listener.stop)
        return watcher

    def on_job(self, callback: Callable[[JobTiming], None]) -> Callable[[], None]:
        """Call ``callback(JobTiming)`` after each job of this store's pool (latency, errors); returns a
        function that stops the calls."""
        return self.pool.timer.listeners.listen(callback)

    def on_topup(self, callback: Callable[[Topup], None]) -> Callable[[], None]:
        """Call ``callback(Topup)`` after each top-up this object credits: a payment, a manual top-up
        (``kind="topup"``) or a credit of the balance API (``api_credit``); a repeat is not told."""
        return self._topups.listen(callback)

    def _told_topup(self, result, profile: str, method: str, amount_cents: int):
        if result.applied and amount_cents > 0:
            bonus_cents = sum(e.amount_cents for e in result.entries if e.kind == "bonus")
            self._topups.tell(Topup(profile, method, amount_cents, bonus_cents))
        return result

    def _announce_result(self, result):
        if result.applied and result.account is not None:
            a = result.account
            self.events.announce(a.profile, a.number, a.balance_cents)
        return result

    # -- money in and out ------------------------------------------------------

    def topup(self, profile: BillingProfile, number: str, amount_cents: int, *, source: str, external_ref: str,
              actor: str, note: str = "", kind: str = "topup", payment_id: int | None = None) -> Deferred:
        """Credit ``amount_cents`` and the profile's bonus for it (a ``bonus`` row), once per (source, external_ref).

        With ``payment_id`` (a ``payments`` row) also once per payment, whatever the external_ref.
        Fires with :class:`CreditResult`; a repeat gives ``applied=False`` and changes nothing.
        """
        lines = [Line(kind, amount_cents, external_ref)]
        bonus = profile.bonus_cents(amount_cents)
        if bonus:
            lines.append(Line("bonus", bonus, f"{external_ref}#bonus"))
        d = self.pool.do(_ledger.credit, profile.name, number, tuple(lines), source=source, actor=actor,
                         note=note, now_ms=self.now_ms(), payment_id=payment_id)
        return d.addCallback(self._announce_result).addCallback(self._told_topup, profile.name, source, amount_cents)

    def credit(self, profile_name: str, number: str, amount_cents: int, *, kind: str, source: str,
               external_ref: str, actor: str, note: str = "") -> Deferred:
        """Credit ``amount_cents`` (> 0) as one ledger row of ``kind``; fires with :class:`CreditResult`."""
        d = self.pool.do(_ledger.credit, profile_name, number, (Line(kind, amount_cents, external_ref),),
                         source=source, actor=actor, note=note, now_ms=self.now_ms())
        return d.addCallback(self._announce_result)

    def debit(self, profile_name: str, number: str, amount_cents: int, *, kind: str, source: str,
              external_ref: str, actor: str, note: str = "", call_session_id: str | None = None) -> Deferred:
        """Take ``amount_cents`` (> 0) if the balance covers it; fires with :class:`DebitResult`.

        ``reason`` says why not: ``"insufficient"`` (nothing changed), ``"duplicate"``
        (this (source, external_ref) was booked before) or ``"no_account"``.
        """
        d = self.pool.do(_ledger.debit, profile_name, number, amount_cents, kind=kind, source=source,
                         external_ref=external_ref, actor=actor, note=note, now_ms=self.now_ms(),
                         call_session_id=call_session_id)
        return d.addCallback(self._announce_result)

    def reverse(self, profile_name: str, number: str, amount_cents: int, *, source: str, external_ref: str,
                actor: str, note: str = "") -> Deferred:
        """Take back a refunded or charged-back payment as far as the balance allows; the rest is a shortfall.

        Fires with :class:`ReverseResult`.
        """
        d = self.pool.do(_ledger.reverse, profile_name, number, amount_cents, source=source,
                         external_ref=external_ref, actor=actor, note=note, now_ms=self.now_ms())
        return d.addCallback(self._announce_result)

    def manual(self, profile: BillingProfile, number: str, amount_cents: int, *, kind: str, external_ref: str,
               actor: str, audit_actor: str, address: str = "", note: str = "", source: str = "manual") -> Deferred:
        """A manual transaction a person books, with its audit row (:mod:`billing.db.manual`).

        ``amount_cents`` signed (< 0 takes); ``kind`` ``"topup"`` adds the profile's bonus for the amount.
        Refused (``reason``) over ``profile.max_manual_cents``, below a zero balance, or on a repeated
        ``external_ref``. Fires with :class:`billing.db.manual.ManualResult`.
        """
        lines = [Line(kind, amount_cents, external_ref)]
        bonus = profile.bonus_cents(amount_cents) if kind == "topup" else 0
        if bonus:
            lines.append(Line("bonus", bonus, f"{external_ref}#bonus"))
        m = _manual.Manual(profile.name, number, tuple(lines), profile.max_manual_cents, source=source, actor=actor,
                           note=note, audit_actor=audit_actor, address=address)
        d = self.pool.do(_manual.book, m, now_ms=self.now_ms()).addCallback(self._announce_result)
        if kind in TOPUP_KINDS:
            d.addCallback(self._told_topup, profile.name, source, amount_cents)
        return d

    def audit(self, profile: str | None = None, action: str | None = None, since_ms: int | None = None,
              limit: int | None = None) -> Deferred:
        """The audit rows (:class:`billing.db.audit.AuditEntry`) matching every filter given, oldest first."""
        return self.run(_audit.entries, profile=profile, action=action, since_ms=since_ms, limit=limit)

    # -- looking things up -------------------------------------------------------

    def account(self, profile_name: str, number: str) -> Deferred:
        """The :class:`Account` of (profile, E.164 number), or None."""
        return self.run(_accounts.find, profile_name, number)

    def account_by_pin(self, profile_name: str, pin: str) -> Deferred:
        """The :class:`Account` whose customer PIN under this profile is ``pin``, or None."""
        return self.run(_accounts.by_pin, profile_name, pin)

    def customers(self, profile: str | None = None, number: str | None = None) -> Deferred:
        """A list of :class:`CustomerRow` (balance, number of top-ups, last top-up), by profile and number."""
        return self.run(_ledger.customers, profile=profile, number=number)

    def transactions(self, profile: str | None = None, number: str | None = None, kinds=None,
                     since_ms: int | None = None, until_ms: int | None = None, limit: int | None = None) -> Deferred:
        """A list of :class:`LedgerEntry`, newest first, matching every filter given (``until_ms`` exclusive)."""
        return self.run(_ledger.transactions, profile=profile, number=number,
                        kinds=tuple(kinds) if kinds else None, since_ms=since_ms, until_ms=until_ms, limit=limit)

    def shortfalls(self, profile: str | None = None, since_ms: int | None = None,
                   until_ms: int | None = None) -> Deferred:
        """A list of :class:`Shortfall`: reversals the balance could not cover."""
        return self.run(_ledger.shortfalls, profile=profile, since_ms=since_ms, until_ms=until_ms)

    def ledger_sum(self, account_id: int) -> Deferred:
        """The sum of an account's ledger rows (equal to its balance, always)."""
        return self.run(_ledger.ledger_sum, account_id)

    def customer_page(self, profile: str, *, search: str = "", region: str = "DE", sort: str = "number",
                      descending: bool = False, offset: int = 0, limit: int = 50) -> Deferred:
        """One page of ``profile``'s accounts (:class:`billing.db.customer_list.CustomerPage`): ``search`` is a
        number in any usual form, or part of one (see :func:`billing.db.customer_list.search_for`)."""
        return self.run(_customer_list.customers, profile, search=_customer_list.search_for(search, region),
                        sort=sort, descending=descending, offset=offset, limit=limit)

    def overview(self, profile: str, *, now_ms: int, today_ms: int, month_ms: int,
                 day_bounds_ms: tuple[int, ...]) -> Deferred:
        """``profile`` at a glance (:class:`billing.db.overview.Overview`); spans cut by the caller."""
        return self.run(_overview.overview, profile, now_ms=now_ms, today_ms=today_ms, month_ms=month_ms,
                        day_bounds_ms=tuple(day_bounds_ms))

    def audit_page(self, *, profile: str | None = None, action: str | None = None, since_ms: int | None = None,
                   until_ms: int | None = None, offset: int = 0, limit: int = 50) -> Deferred:
        """Audit entries newest first, a page at a time (:class:`billing.db.audit.AuditPage`); ``profile``
        None: all of them, also those of no profile."""
        return self.run(_audit.page, profile=profile, action=action, since_ms=since_ms, until_ms=until_ms,
                        offset=offset, limit=limit)

    def audit_actions(self, profile: str | None = None) -> Deferred:
        """The audit actions that occur (under ``profile``, or anywhere), sorted."""
        return self.run(_audit.actions, profile=profile)

    # -- calls -------------------------------------------------------------------

    def add_call_record(self, record: CallRecord) -> Deferred:
        """Store a finished call; fires with the stored :class:`CallRecord` (with its id).

        Records are written in batches, one transaction for those that arrived since the store's
        thread last had work (at most 50 ms later; :class:`billing.db.batch.RecordWriter`,
        :attr:`records`); a record that cannot be written is logged in full and counted, and its
        Deferred fails. :meth:`close` writes what is waiting.
        """
        return self.records.add(record)

    def calls(self, profile: str, number: str, limit: int | None = None) -> Deferred:
        """The :class:`CallRecord` list of a caller under a profile, newest first."""
        return self.run(_calls.for_caller, profile, number, limit=limit)

    def profile_calls(self, profile: str, which: "_calls.CallFilter" = _calls.CallFilter(), *, offset: int = 0,
                      limit: int | None = None) -> Deferred:
        """Every caller's calls under ``profile`` matching ``which``, newest first: a :class:`billing.db.calls.CallPage`."""
        return self.run(_calls.for_profile, profile, which, offset=offset, limit=limit)

    def near_accounts(self, profile: str, numbers) -> Deferred:
        """For each of ``numbers`` with no account under ``profile``, the accounts whose numbers differ from it
        by a typo (:mod:`billing.db.near_numbers`): a dict number -> tuple of :class:`Account`."""
        return self.run(_near.near_accounts, profile, tuple(numbers))

    # -- operator changes ----------------------------------------------------------

    def renumber(self, profile_name: str, old: str, new: str, *, merge: bool = False, actor: str,
                 source: str = "") -> Deferred:
        """Move the account of ``old`` (balance, ledger) to ``new``; fires with :class:`RenumberResult`.

        Fails with :class:`NumberTaken` when ``new`` has an account, unless ``merge``. Call records keep
        their number. ``actor`` (from ``source``, an address) is logged and written to the audit table in
        the same transaction.
        """
        d = self.run(_accounts.renumber, profile_name, old, new, merge=merge, now_ms=self.now_ms(), actor=actor,
                     source=source)

        def moved(result: RenumberResult) -> RenumberResult:
            a = result.account
            self.log.info("renumber {profile} {old} -> {new} by {actor}: merged={merged}, {rows} ledger rows, "
                          "{records} call records", profile=profile_name, old=old, new=new, actor=actor,
                          merged=result.merged, rows=result.ledger_rows, records=result.call_records)
            self.events.announce(a.profile, a.number, a.balance_cents)
            return result
        return d.addCallback(moved)

    # -- the first-caller list -------------------------------------------------------

    def first_callers(self, profile_name: str, *, number: str | None = None, digits: str = "", offset: int = 0,
                      limit: int = 50) -> Deferred:
        """A :class:`~billing.db.first_callers.FirstCallerPage` of the profile's first callers, newest first:
        the E.164 ``number``, or the numbers containing ``digits``, or all."""
        return self.run(_first_callers.listing, profile_name, exact=number, digits=digits, offset=offset,
                        limit=limit)

    def remove_first_caller(self, profile_name: str, number: str, *, actor: str, source: str = "") -> Deferred:
        """Take ``number`` off the first-caller list (it gets the offer again), with an audit row; fires with
        the entry removed, or None when it was not on it."""
        return self.run(_first_callers.remove, profile_name, number, actor=actor, source=source,
                        now_ms=self.now_ms())

    def add_first_callers(self, profile_name: str, numbers, *, actor: str, source: str = "") -> Deferred:
        """Put E.164 ``numbers`` on the first-caller list (they do not get the offer), an audit row each;
        fires with :class:`~billing.db.first_callers.ImportResult`."""
        return self.run(_first_callers.add, profile_name, tuple(numbers), actor=actor, source=source,
                        now_ms=self.now_ms())
