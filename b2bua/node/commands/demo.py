"""``prepaid demo [--once]``: the whole system on a temporary SQLite store, one scripted call, a timeline.

With ``--once`` it exits after the call: 0 when it went as expected, else 1
with the reasons on standard error.  Without, it keeps serving and prints the
top-up page's URL and how to call the service number with SIPp, until Ctrl-C.
A watchdog ends a demo whose call has not finished in ``--watchdog-s`` with 1.
"""

from __future__ import annotations

import pathlib
import shutil
import sys
import tempfile


#: the one line ``prepaid demo`` says where numpy is missing: the demo's phones find the prompts in what
#: they heard by cross-correlation (numpy), which a node does not need, so numpy is the ``demo`` extra
NEEDS_NUMPY = ("prepaid demo: needs numpy, which the demo extra installs: pip install 'prepaid[demo]' "
               "(in a checkout: pip install -e '.[demo]')")


def register(sub) -> None:
    p = sub.add_parser("demo", help="the whole system on a temporary store, one scripted call and its timeline")
    p.add_argument("--once", action="store_true", help="exit after the call: 0 when it went as expected")
    p.add_argument("--watchdog-s", type=float, default=90.0, help="give up (exit 1) after this long (default 90)")
    p.add_argument("--verbose", action="store_true", help="also print the node's log to standard error")
    p.set_defaults(func=run)


def run(args) -> int:
    try:
        from demo.report import report, verdict
        from demo.scenario import Demo, DemoPlan, sipp_scenario
    except ModuleNotFoundError as exc:
        if exc.name != "numpy":
            raise
        print(NEEDS_NUMPY, file=sys.stderr)
        return 2
    from twisted.internet import reactor
    from twisted.logger import globalLogBeginner, textFileLogObserver

    if args.verbose:
        globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stderr)], redirectStandardIO=False)
    folder = pathlib.Path(tempfile.mkdtemp(prefix="prepaid-demo-"))
    demo = Demo(reactor, folder, DemoPlan(watchdog_s=args.watchdog_s))
    state = {"code": 1, "finished": False}
    reactor.addSystemEventTrigger("before", "shutdown", demo.stop)

    def stop() -> None:
        if reactor.running:
            reactor.stop()

    def finished(result) -> None:
        state["finished"] = True
        if watchdog.active():
            watchdog.cancel()
        print("\n".join(report(result)), flush=True)
        why = verdict(result)
        state["code"] = 0 if not why else 1
        if why:
            print("\nRESULT: NOT as expected", flush=True)
            for reason in why:
                print(f"prepaid demo: {reason}", file=sys.stderr, flush=True)
        else:
            print("\nRESULT: as expected (answered, bridged, warned, cut off by the credit, ledger adds up)",
                  flush=True)
        if args.once:
            stop()
        else:
            serving(result)

    def serving(result) -> None:
        ports, config = result.ports, result.config
        profile = config.profiles["demo"]
        scenario = sipp_scenario(folder)
        page = (f"{config.http.public_url}/topup/{profile.button}" if ports.http
                else "(the web side is not wired into this build: no top-up page)")
        print(f"\nStill serving (Ctrl-C ends it). Store and config: {folder}", flush=True)
        print(f"  top-up page: {page}")
        print(f"  top up by hand: prepaid topup --config {demo.config_path} --profile demo {demo.caller} 0.50")
        print(f"  call it with SIPp: sipp -sf {scenario} -s {profile.service_numbers[0]} "
              f"127.0.0.1:{ports.sip_udp} -m 1 -mp 40000", flush=True)

    def failed(failure) -> None:
        state["finished"] = True
        if watchdog.active():
            watchdog.cancel()
        print(f"prepaid demo failed: {failure.getErrorMessage()}", file=sys.stderr, flush=True)
        print(failure.getTraceback(), file=sys.stderr, flush=True)
        state["code"] = 1
        stop()

    def give_up() -> None:
        if not state["finished"]:
            print(f"prepaid demo: watchdog: the call did not finish within {args.watchdog_s:.0f} s",
                  file=sys.stderr, flush=True)
            state["code"] = 1
            stop()

    watchdog = reactor.callLater(args.watchdog_s, give_up)
    reactor.callWhenRunning(lambda: demo.run().addCallbacks(finished, failed))
    try:
        reactor.run()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return state["code"] if state["finished"] or state["code"] else 1
