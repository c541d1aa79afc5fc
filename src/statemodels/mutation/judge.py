"""The judge: one mutant, one ordinary machine run at ``ci``, in its own process.

``python -m statemodels.mutation.judge relay`` runs the relay machine exactly as
``tests/stateful/test_supervisor.py::test_relay_machine_finds_no_divergence_in_the_bundled_relay``
does (a :class:`RelayPool` of bundled relays, the ``ci`` budget) against whatever relay code is
first on ``PYTHONPATH`` -- the runner points it at a scratch copy holding one mutant.
``python -m statemodels.mutation.judge pggit --sql FILE --dsn DSN`` runs the pggit machine as
``test_pggit_machine_against_the_bundled_system`` does, on a template installed from ``FILE``
on the server at ``DSN``. ``python -m statemodels.mutation.judge status2`` runs the status2
machine as ``tests/stateful/test_status2.py::test_status2_agrees_with_its_model`` does: the
bundled service (``service.py`` of the same copy) on a Redis of its own, which the machine kills
and restarts.

Two differences from the tests, neither of which changes a verdict: no shrinking (a mutant is
killed by its first divergence; the repro is not needed) and a fixed seed (``derandomize``), so
a score can be compared before and after a machine change.

Prints one JSON line: ``{"verdict": "killed"|"survived"|"stillborn", "signature": ...,
"package": <where statemodels was imported from>}``; the runner adds ``timed out``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
from pathlib import Path
from typing import Any

from hypothesis import Phase
from hypothesis.errors import Flaky

import statemodels

from ..engine import Divergence, run_machine
from ..engine.runner import divergences_in

__all__ = ["judge_pggit", "judge_relay", "judge_status2", "main"]

_NO_SHRINK: dict[str, Any] = {
    "phases": (Phase.explicit, Phase.reuse, Phase.generate),
    "database": None,
    "derandomize": True,
}


def _verdict(run: Any) -> dict[str, Any]:
    try:
        run()
    except Divergence as exc:
        return {"verdict": "killed", "signature": exc.signature}
    except Flaky as exc:  # diverged once, not on replay: timing-dependent, still caught
        # Anywhere in it: a group's members, and what it was raised while handling.
        inner = divergences_in(exc)
        first = inner[0].signature if inner else type(exc).__name__
        return {"verdict": "killed", "signature": f"flaky: {first}"}
    except Exception as exc:  # the ordinary test would fail too
        return {"verdict": "killed", "signature": f"error: {type(exc).__name__}"}
    return {"verdict": "survived", "signature": None}


def judge_relay() -> dict[str, Any]:
    from ..supervisor import RelayConfig, RelayPool, bundled_relay_machine

    def run() -> None:
        with RelayPool(RelayConfig()) as pool:
            run_machine(lambda: bundled_relay_machine(pool=pool), budget="ci", **_NO_SHRINK)

    return _verdict(run)


def judge_status2() -> dict[str, Any]:
    from ..errors import ServerError
    from ..infra.redis import RedisServer
    from ..status2 import bundled_machine, bundled_status2

    with contextlib.ExitStack() as stack:
        server = RedisServer.start()  # owned: the machine's outages kill and restart it
        stack.callback(server.stop)
        try:
            service = stack.enter_context(bundled_status2(server))
        except ServerError as exc:  # the mutated service never answers /health
            return {"verdict": "killed", "signature": f"no start: {str(exc)[:160]}"}
        return _verdict(
            lambda: run_machine(lambda: bundled_machine(service, server), budget="ci", **_NO_SHRINK)
        )


def judge_pggit(sql_file: Path, dsn: str) -> dict[str, Any]:
    import psycopg

    from ..errors import ServerError
    from ..infra import PostgresServer, TemplateJanitor
    from ..pggit import install, machine_factory

    source = sql_file.read_text(encoding="utf-8")
    server = PostgresServer.attach(dsn)
    try:
        worlds = TemplateJanitor(
            server, name="pggit_gen", install=lambda conn: install(conn, source=source)
        )
    except (ServerError, psycopg.Error) as exc:  # the mutated script does not even install
        return {"verdict": "stillborn", "signature": str(exc)[:200]}
    with worlds:
        return _verdict(lambda: run_machine(machine_factory(worlds), budget="ci", **_NO_SHRINK))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m statemodels.mutation.judge")
    p.add_argument("system", choices=("relay", "pggit", "status2"))
    p.add_argument("--sql", type=Path, help="pggit: the script to install")
    p.add_argument("--dsn", help="pggit: a server to build the template on (CREATEDB)")
    args = p.parse_args(argv)
    # The runner's time limit sends SIGTERM: unwind (relays stopped, temp dirs removed).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.system == "pggit":
        if args.sql is None or not args.dsn:
            p.error("pggit needs --sql FILE and --dsn DSN")
        result = judge_pggit(args.sql, args.dsn)
    elif args.system == "status2":
        result = judge_status2()
    else:
        result = judge_relay()
    result["package"] = str(Path(statemodels.__file__).resolve().parent)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
