"""``statemodels``: the command line.

    statemodels budgets            the example budgets and what they mean
    statemodels mutants [DOMAIN]   the seeded bugs each bundled system can run with
    statemodels bench [NAME ...]   run benchmarks/bench_NAME.py (all of them without a name)

Tests themselves run under pytest: ``pytest tests/stateful --budget ci``.
"""

from __future__ import annotations

import argparse
import importlib
import runpy
import sys
from collections.abc import Sequence
from pathlib import Path

from .engine import BUDGETS
from .errors import StatemodelsError

__all__ = ["main"]

#: Domain → module holding its ``MUTANTS`` catalogue. Imported on demand: each pulls its driver.
_CATALOGUES = {
    "register": "statemodels.register.system",
    "pggit": "statemodels.pggit.system.mutants",
    "supervisor": "statemodels.supervisor.system.mutants",
    "reload": "statemodels.reload.pool",
}


def _budgets(_: argparse.Namespace) -> int:
    for b in BUDGETS.values():
        box = f", time-boxed to {b.minutes:g} min (--budget-minutes)" if b.minutes else ""
        print(
            f"{b.name:<6} {b.max_examples:>4} examples x {b.steps:>3} steps, "
            f"step timeout {b.step_timeout:g}s{box}"
        )
    return 0


def _mutants(args: argparse.Namespace) -> int:
    domains = [args.domain] if args.domain else list(_CATALOGUES)
    for domain in domains:
        if domain not in _CATALOGUES:
            raise StatemodelsError(
                f"unknown domain {domain!r}: choose from {', '.join(_CATALOGUES)}"
            )
        catalogue = importlib.import_module(_CATALOGUES[domain]).MUTANTS
        print(f"{domain}:")
        for name, what in sorted(catalogue.items()):
            print(f"  {name:<28} {what}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    folder = Path(args.dir)
    available = sorted(p.stem.removeprefix("bench_") for p in folder.glob("bench_*.py"))
    if not available:
        raise StatemodelsError(
            f"no benchmarks in {str(folder)!r}: run from the repository root or pass --dir"
        )
    chosen = args.names or available
    for name in chosen:
        if name not in available:
            raise StatemodelsError(
                f"unknown benchmark {name!r}: choose from {', '.join(available)}"
            )
    for name in chosen:
        print(f"== bench {name}", flush=True)
        script = str(folder / f"bench_{name}.py")
        saved, sys.argv = sys.argv, [script]  # each script parses its own (default) arguments
        try:
            runpy.run_path(script, run_name="__main__")
        finally:
            sys.argv = saved
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="statemodels", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("budgets", help="list the example budgets").set_defaults(run=_budgets)
    mutants = sub.add_parser("mutants", help="list the seeded bugs of the bundled systems")
    mutants.add_argument("domain", nargs="?", help=", ".join(_CATALOGUES))
    mutants.set_defaults(run=_mutants)
    bench = sub.add_parser("bench", help="run benchmarks (printed numbers, never asserted)")
    bench.add_argument("names", nargs="*", help="benchmark names (default: all)")
    bench.add_argument("--dir", default="benchmarks", help="folder of bench_*.py scripts")
    bench.set_defaults(run=_bench)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except StatemodelsError as exc:
        print(f"statemodels: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
