"""Generate mutants of a bundled system, judge each with its ordinary machine run, score them.

::

    python -m statemodels.mutation pggit --sample 10 --seed 1      # a sample, ~2 min
    python -m statemodels.mutation status2 --sample 5 --seed 1     # a sample, ~5 min
    python -m statemodels.mutation relay pggit --json mutation.json # everything (weekly)
    python benchmarks/bench_mutation.py --sample 40                 # the same, as a benchmark

Per system: mutants generated, judged, killed, survived, timed out, equivalent (triaged in
:mod:`statemodels.mutation.triage`, not judged unless ``--judge-equivalent``), stillborn (the
mutated SQL does not install: the mutator's fault, not the machine's) and
``score = killed / (killed + survived + timed out)``. Each mutant is judged in its own process
(:mod:`statemodels.mutation.judge`) under a time limit that kills its whole process group.
Before the mutants, the unmutated system is judged once (the *baseline*): it must survive --
otherwise every verdict would be noise -- and its time sets the default per-mutant limit
(``3 x baseline``, at least 60 s).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs

import statemodels

from ..errors import ConfigurationError, StatemodelsError
from . import python as py_mutants
from . import sql as sql_mutants
from .triage import EQUIVALENT, equivalent_reason

__all__ = ["Result", "SystemReport", "main", "run_system"]

SYSTEMS = ("relay", "pggit", "status2")
VERDICTS = ("killed", "survived", "timed out", "equivalent", "stillborn")
_PACKAGE_ROOT = Path(statemodels.__file__).resolve().parent.parent


@attrs.frozen
class Result:
    id: str
    description: str
    verdict: str
    signature: str | None = None
    seconds: float = 0.0
    diff: str = ""


@attrs.frozen
class SystemReport:
    system: str
    generated: int
    results: tuple[Result, ...]
    baseline_seconds: float | None
    stale_triage: tuple[str, ...] = ()

    def counts(self) -> dict[str, int]:
        c = Counter(r.verdict for r in self.results)
        return {v: c.get(v, 0) for v in VERDICTS}

    @property
    def score(self) -> float | None:
        c = self.counts()
        judged = c["killed"] + c["survived"] + c["timed out"]
        return c["killed"] / judged if judged else None

    def to_json(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "generated": self.generated,
            "judged": len(self.results),
            **self.counts(),
            "score": self.score,
            "baseline_seconds": self.baseline_seconds,
            "stale_triage": list(self.stale_triage),
            "results": [attrs.asdict(r) for r in self.results],
        }

    def summary(self) -> str:
        c = self.counts()
        score = "n/a" if self.score is None else f"{self.score:.0%}"
        return (
            f"{self.system}: generated {self.generated}, judged {len(self.results)}: "
            f"killed {c['killed']}, survived {c['survived']}, timed out {c['timed out']}, "
            f"equivalent {c['equivalent']}, stillborn {c['stillborn']}; score {score}"
        )


# -- judging one mutant in its own process ---------------------------------------------------


def _judge(
    argv: list[str], pythonpath: Path, timeout: float, expect_package: Path
) -> tuple[str, str | None, float]:
    """Run the judge; (verdict, signature, seconds). Kills its process group on timeout."""
    env = {**os.environ, "PYTHONPATH": str(pythonpath), "PYTHONDONTWRITEBYTECODE": "1"}
    cmd = [sys.executable, "-m", "statemodels.mutation.judge", *argv]
    start = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: a timeout kills relay and workers too
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        took = time.monotonic() - start
        # SIGTERM first: the judge unwinds, so its relays and databases are removed (a SIGKILL
        # would leave their temp dirs behind); then SIGKILL whatever is left of the group.
        proc.terminate()
        try:
            proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
        return "timed out", None, took
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # anything the judge left behind
    took = time.monotonic() - start
    lines = [ln for ln in out.decode(errors="replace").splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        # The machine never ran: the mutant broke importing the package (worker.py runs its
        # main() on import when its __name__ test is inverted). The ordinary test fails too.
        last = err.decode(errors="replace").strip().splitlines()[-1:] or [""]
        return "killed", f"judge process failed: {last[0][:120]}", took
    result = json.loads(lines[-1])
    if Path(result["package"]) != expect_package:
        raise ConfigurationError(
            f"the judge imported statemodels from {result['package']}, not {expect_package}: "
            "an installed copy shadows PYTHONPATH; reinstall statemodels in editable mode"
        )
    return result["verdict"], result.get("signature"), took


# -- the two systems -----------------------------------------------------------------------


def _pick(ids: list[str], sample: int | None, seed: int, only: Sequence[str]) -> set[str]:
    if only:
        unknown = sorted(set(only) - set(ids))
        if unknown:
            raise ConfigurationError(f"no such generated mutant(s) {unknown}; see --list")
        return set(only)
    if sample is None or sample >= len(ids):
        return set(ids)
    return set(random.Random(seed).sample(sorted(ids), sample))


@contextlib.contextmanager
def _postgres() -> Iterator[str]:
    from ..infra import PostgresServer

    server = PostgresServer.from_env()
    try:
        yield server.dsn
    finally:
        server.stop()


def run_system(
    system: str,
    *,
    sample: int | None = None,
    seed: int = 0,
    timeout: float | None = None,
    baseline: bool = True,
    only: Sequence[str] = (),
    judge_equivalent: bool = False,
    log: Any = None,
) -> SystemReport:
    """Generate, judge and score the mutants of one bundled system (one of :data:`SYSTEMS`)."""
    if system not in SYSTEMS:
        raise ConfigurationError(f"unknown system {system!r}; choose one of {SYSTEMS}")
    log = log or functools.partial(print, flush=True)
    with contextlib.ExitStack() as stack:
        # Both judges import statemodels from a snapshot: editing the work tree while a long
        # run goes on changes neither the mutants nor the machines judging them.
        root = stack.enter_context(py_mutants.scratch_copy(_PACKAGE_ROOT))
        python = py_mutants.SYSTEMS.get(system)
        if python is not None:
            generated: list[Any] = py_mutants.mutants(root, python)
        else:
            dsn = stack.enter_context(_postgres())
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="statemodels-")))
            source = (root / "statemodels/pggit/system/pggit.sql").read_text(encoding="utf-8")
            generated = sql_mutants.mutants(source)
        ids = [m.id for m in generated]
        prefix = f"{system}/"
        stale = tuple(
            sorted(k for k in EQUIVALENT if k.startswith(prefix) and k[len(prefix) :] not in ids)
        )
        chosen = _pick(ids, sample, seed, only)
        package = (root / "statemodels").resolve()

        def judge(extra: list[str]) -> tuple[str, str | None, float]:
            return _judge([system, *extra], root, limit, package)

        def pggit_args(text: str) -> list[str]:
            path = work / "mutant.sql"
            path.write_text(text, encoding="utf-8")
            return ["--sql", str(path), "--dsn", dsn]

        limit = timeout or 600.0
        base_seconds = None
        if baseline:
            verdict, sig, base_seconds = judge([] if python else pggit_args(source))
            log(f"{system}: baseline {verdict} in {base_seconds:.1f}s")
            if verdict != "survived":
                raise StatemodelsError(
                    f"the {system} machine does not pass against the unmutated system "
                    f"({verdict}: {sig}); fix that before scoring mutants"
                )
        limit = timeout or max(60.0, 3 * (base_seconds or 40.0))
        results: list[Result] = []
        for mutant in generated:
            if mutant.id not in chosen:
                continue
            why = equivalent_reason(
                system,
                mutant.id,
                getattr(mutant, "file", ""),
                getattr(mutant, "text", ""),
                getattr(mutant, "operator", ""),
            )
            if why and not judge_equivalent:
                results.append(Result(mutant.id, mutant.description, "equivalent", why))
                continue
            if python is not None:
                with py_mutants.applied(root, mutant) as diff:
                    verdict, sig, took = judge([])
            else:
                diff = mutant.description
                verdict, sig, took = judge(pggit_args(mutant.apply(source)))
            if verdict in ("survived", "timed out") and why:  # judged anyway (--judge-equivalent)
                verdict, sig = "equivalent", why
            results.append(
                Result(mutant.id, mutant.description, verdict, sig, round(took, 2), diff)
            )
            log(f"  {verdict:<10} {took:6.1f}s  {mutant.id}  {sig or ''}")
        return SystemReport(system, len(generated), tuple(results), base_seconds, stale)


# -- the command line ----------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """``statemodels hunt --generated`` (proposed) / ``python -m statemodels.mutation``."""
    p = argparse.ArgumentParser(
        prog="python -m statemodels.mutation",
        description="Generated mutants of the bundled systems, judged by their machines at ci.",
    )
    p.add_argument(
        "systems", nargs="*", metavar="SYSTEM", help="relay, pggit, status2 (default: all)"
    )
    p.add_argument("--sample", type=int, help="judge N mutants per system, drawn with --seed")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, help="seconds per mutant (default 3x baseline)")
    p.add_argument("--no-baseline", action="store_true", help="skip judging the real system")
    p.add_argument("--only", default="", help="comma-separated mutant ids (one system)")
    p.add_argument("--judge-equivalent", action="store_true")
    p.add_argument("--json", type=Path, help="write every result here")
    p.add_argument("--list", action="store_true", help="list the generated mutants and exit")
    args = p.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the scratch copy and the Postgres server are removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    systems = args.systems or list(SYSTEMS)
    try:
        for system in systems:
            if system not in SYSTEMS:
                raise ConfigurationError(f"unknown system {system!r}; choose from {SYSTEMS}")
        if args.list:
            for system in systems:
                for m in _list(system):
                    print(f"{system}/{m.id}\t{m.description}")
            return 0
        reports = []
        for system in systems:
            only = [i for i in args.only.split(",") if i]
            report = run_system(
                system,
                sample=args.sample,
                seed=args.seed,
                timeout=args.timeout,
                baseline=not args.no_baseline,
                only=only,
                judge_equivalent=args.judge_equivalent,
            )
            reports.append(report)
            print(report.summary())
            for stale in report.stale_triage:
                print(f"  stale triage entry {stale}: no longer generated; look again")
    except StatemodelsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        args.json.write_text(json.dumps([r.to_json() for r in reports], indent=2) + "\n")
        print(f"results: {args.json}")
    return 0


def _list(system: str) -> list[Any]:
    if system in py_mutants.SYSTEMS:
        with py_mutants.scratch_copy(_PACKAGE_ROOT) as root:
            return list(py_mutants.mutants(root, py_mutants.SYSTEMS[system]))
    source = (_PACKAGE_ROOT / "statemodels/pggit/system/pggit.sql").read_text(encoding="utf-8")
    return list(sql_mutants.mutants(source))
