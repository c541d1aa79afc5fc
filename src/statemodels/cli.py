"""statemodels: the command line.

    statemodels budgets            the example budgets and what they mean
    statemodels mutants [DOMAIN]   the seeded bugs each bundled system can run with
    statemodels quirks             the differences a deployment may declare, which models adopt
    statemodels replay TRACE       run a divergence's commands again (--pytest: write a test)
    statemodels report --merge     one report from several runs' report JSON and traces
    statemodels hunt [DOMAIN]      every mutant hunt, as a benchmark table (and JSON)
    statemodels bench [NAME ...]   run benchmarks/bench_NAME.py (all of them without a name)

Tests themselves run under pytest: pytest tests/stateful --budget ci
"""

from __future__ import annotations

import argparse
import importlib
import runpy
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

from .engine import BUDGETS
from .errors import StatemodelsError

__all__ = ["main"]

#: Domain → module holding its ``MUTANTS`` catalogue (``module:NAME`` for another name).
#: Imported on demand: each pulls its driver.
_CATALOGUES = {
    "register": "statemodels.register.system",
    "pggit": "statemodels.pggit.system.mutants",
    "supervisor": "statemodels.supervisor.system.mutants",
    "reload": "statemodels.reload.pool",
    "reload-nats": "statemodels.reload.system.natsfleet:NATS_MUTANTS",
    "status2": "statemodels.status2.system.mutants",
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
        module, _, name = _CATALOGUES[domain].partition(":")
        catalogue = getattr(importlib.import_module(module), name or "MUTANTS")
        print(f"{domain}:")
        for name, what in sorted(catalogue.items()):
            print(f"  {name:<28} {what}")
    return 0


#: Domain -> module holding its ``QUIRKS`` catalogue (declared differences the model adopts).
_QUIRKS = {"pggit": "statemodels.pggit.model"}


def _quirks(_: argparse.Namespace) -> int:
    for domain, module in _QUIRKS.items():
        print(f"{domain} (--statemodels-{domain}-quirks a,b):")
        for name, what in sorted(importlib.import_module(module).QUIRKS.items()):
            print(f"  {name:<28} {what}")
    return 0


def _bench_dir(given: str | None) -> Path:
    """The benchmarks folder: --dir, else ./benchmarks, else the checkout this package runs from
    (an editable install), else a one-line error saying what is needed."""
    if given:
        candidates = [Path(given)]
    else:
        candidates = [Path("benchmarks"), Path(__file__).resolve().parents[2] / "benchmarks"]
    for folder in candidates:
        if any(folder.glob("bench_*.py")):
            return folder
    if given:
        raise StatemodelsError(f"no benchmarks in {given!r}: pass the folder of bench_*.py scripts")
    raise StatemodelsError(
        "statemodels bench runs the scripts in benchmarks/ of a statemodels checkout, which an "
        "installed wheel does not carry: run it from the repository root, or pass --dir "
        "PATH/TO/benchmarks (statemodels hunt is the benchmark that ships with the package)"
    )


def _bench(args: argparse.Namespace) -> int:
    folder = _bench_dir(args.dir)
    available = sorted(p.stem.removeprefix("bench_") for p in folder.glob("bench_*.py"))
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


def _replay(args: argparse.Namespace) -> int:
    from . import replay

    return replay.main(args.trace, target=args.target, mutants=args.mutants, as_pytest=args.pytest)


def _report(args: argparse.Namespace) -> int:
    from . import report
    from . import trace as traces

    inputs = [report.load(p) for p in args.merge]
    merged = report.merge(inputs)
    trace_files = [p for d in args.traces for p in sorted(Path(d).rglob("*.json"))]
    if trace_files:
        extra = report.merge([{"divergences": report.from_traces(trace_files)}])
        merged = report.merge([merged, {"divergences": extra["divergences"]}])
    if not inputs and not trace_files:
        raise StatemodelsError(
            "nothing to report: pass --merge REPORT.json ... and/or --traces DIR ... "
            f"(traces are written under {traces.DEFAULT_DIR})"
        )
    html_path, json_path = report.write(merged, args.output)
    sut = sum(not d["mutant"] for d in merged["divergences"])
    print(
        f"report: {html_path} (data: {json_path}); {len(merged['divergences'])} distinct "
        f"divergence(s), {sut} of the systems under test"
    )
    return 0


def _hunt(args: argparse.Namespace) -> int:
    from . import hunt

    domains = [args.domain] if args.domain else None
    done: list[hunt.HuntResult] = []

    def row(result: hunt.HuntResult) -> None:
        print(hunt.render(result), flush=True)
        done.append(result)
        hunt.write_json(done, args.json)  # an interrupted hunt keeps the rows it has

    from .infra.lifeline import start_run, unwind_on_sigterm

    # As a pytest run does: what the hunt starts is marked and dies with it, also when the hunt
    # is killed (a lifeline), and SIGTERM (a time limit) unwinds it like Ctrl-C.
    lifeline, _ = start_run()
    unwind_on_sigterm()
    print(hunt.HEADER, flush=True)
    try:
        results = hunt.hunt(domains, only=args.mutant or None, on_result=row)
    except KeyboardInterrupt:
        print(f"interrupted: the {len(done)} row(s) so far are in {args.json}", file=sys.stderr)
        return 130
    finally:
        if lifeline is not None:
            lifeline.close()
    path = hunt.write_json(results, args.json)
    caught = sum(r.caught for r in results)
    print(f"{caught} of {len(results)} mutants caught; table written to {path}")
    return 0 if caught == len(results) else 1


def _options_help() -> str:
    from .options import OPTIONS

    lines = ["pytest options (each has three spellings: flag, environment variable, ini key):"]
    for o in OPTIONS.values():
        alias = f" / {o.alias}" if o.alias else ""
        lines.append(f"  {o.flag}{alias}   {o.env}   ini {o.ini}")
        text = f"{o.help} (default {o.default!r})"
        lines += textwrap.wrap(text, 96, initial_indent="      ", subsequent_indent="      ")
    return "\n".join(lines)


def _version() -> str:
    import platform

    import hypothesis

    from . import __version__

    return (
        f"statemodels {__version__} (Hypothesis {hypothesis.__version__}, "
        f"Python {platform.python_version()})"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="statemodels",
        description=__doc__,
        epilog=_options_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("budgets", help="list the example budgets").set_defaults(run=_budgets)
    mutants = sub.add_parser("mutants", help="list the seeded bugs of the bundled systems")
    mutants.add_argument("domain", nargs="?", help=", ".join(_CATALOGUES))
    mutants.set_defaults(run=_mutants)
    sub.add_parser("quirks", help="list the quirks a deployment may declare").set_defaults(
        run=_quirks
    )
    replay = sub.add_parser(
        "replay",
        help="run a trace's commands again on a fresh world (exit 0: no longer diverges)",
        description="Run the commands of a trace (.statemodels/traces/<machine>/<hash>.json) "
        "in order on a fresh world of the same kind; print the divergence again, or 'no "
        "longer diverges' (exit 0). Exit 1 while it still diverges.",
    )
    replay.add_argument("trace", help="a trace file")
    replay.add_argument(
        "--target",
        help="your system instead of a bundled one: a Redis URL, a PostgreSQL DSN",
    )
    replay.add_argument(
        "--mutants",
        help="comma-separated seeded bugs to run with instead of the trace's ('' for none)",
    )
    replay.add_argument(
        "--pytest", action="store_true", help="print a pytest regression test instead"
    )
    replay.set_defaults(run=_replay)
    report = sub.add_parser(
        "report",
        help="merge report JSON files and trace folders into one deduplicated report",
    )
    report.add_argument("--merge", nargs="*", default=[], help="report .json files to merge")
    report.add_argument("--traces", nargs="*", default=[], help="folders of trace files")
    report.add_argument("-o", "--output", default="statemodels-report.html", help="the .html")
    report.set_defaults(run=_report)
    hunt = sub.add_parser(
        "hunt", help="hunt every catalogue mutant; print and write the benchmark table"
    )
    hunt.add_argument("domain", nargs="?", help=", ".join(_CATALOGUES))
    hunt.add_argument("--mutant", action="append", help="only this mutant (repeatable)")
    hunt.add_argument("--json", default=".statemodels/hunt.json", help="where the JSON goes")
    hunt.set_defaults(run=_hunt)
    bench = sub.add_parser("bench", help="run benchmarks (printed numbers, never asserted)")
    bench.add_argument("names", nargs="*", help="benchmark names (default: all)")
    bench.add_argument("--dir", default=None, help="folder of bench_*.py scripts")
    bench.set_defaults(run=_bench)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except StatemodelsError as exc:
        print(f"statemodels: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("statemodels: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
