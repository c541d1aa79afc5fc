"""Trace files: every divergence, written down as data that can be replayed after code edits.

When a run reports a divergence (and when it first searches past a known one) the writer puts
one JSON file at ``<dir>/<machine>/<hash>.json`` -- ``<dir>`` is ``.statemodels/traces`` unless
``--statemodels-trace-dir`` / ``STATEMODELS_TRACE_DIR`` / ini ``statemodels_trace_dir`` says
otherwise, ``<hash>`` the first 12 hex digits of the SHA-256 of the signature (and, for a mutant
hunt, of its mutants), so the same divergence found again overwrites its own file. It holds:

- ``machine``, ``signature``, ``known`` (searched past), ``mutants`` (a hunt's seeded bugs);
- ``world``: the system and where it ran, without secrets (:func:`statemodels.worlds.redact`);
- ``budget``, ``seed``, ``versions`` (statemodels, Hypothesis, Python);
- ``commands``: every command of the example, **as data** (:mod:`statemodels.codec`);
- ``journal``: each step's command, outcome and milliseconds; ``divergence``: the table.

The divergence text then ends with how to replay it: the ``statemodels replay`` command and a
Python snippet that runs the same commands as printed.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import threading
from pathlib import Path
from typing import Any

from . import codec, worlds
from .engine import hooks
from .engine.budgets import Budget
from .engine.divergence import Divergence

__all__ = ["DEFAULT_DIR", "FORMAT", "TraceWriter", "replay_hint", "trace_data"]

FORMAT = "statemodels-trace/1"
DEFAULT_DIR = ".statemodels/traces"

# The world a divergence ran on, attached when it is seen (the machine is gone when it is
# reported). A plain attribute on the exception: Divergence belongs to the engine.
_WORLD_ATTR = "_statemodels_world"
_KNOWN_ATTR = "_statemodels_known"


def short_hash(signature: str, mutants: list[str] | tuple[str, ...] = ()) -> str:
    key = signature if not mutants else signature + "|" + ",".join(sorted(mutants))
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def _versions() -> dict[str, str]:
    import hypothesis

    from . import __version__

    return {
        "statemodels": __version__,
        "hypothesis": hypothesis.__version__,
        "python": platform.python_version(),
    }


def trace_data(
    divergence: Divergence,
    *,
    world: dict[str, Any] | None = None,
    budget: Budget | None = None,
    seed: int | None = None,
    known: bool = False,
) -> dict[str, Any]:
    """The JSON-ready trace of one divergence."""
    world = world if world is not None else getattr(divergence, _WORLD_ATTR, None) or {}
    commands: list[Any] | None = []
    problem = None
    journal = []
    for entry in divergence.journal.entries:
        data = None
        if entry.cmd is not None:
            try:
                data = codec.encode(entry.cmd)
            except codec.TraceFormatError as exc:
                problem = str(exc)
        if data is not None and commands is not None:
            commands.append(data)
        journal.append(
            {
                "index": entry.index,
                "command": entry.command,
                "outcome": entry.outcome,
                "ms": round(entry.seconds * 1e3, 3),
                "data": data,
            }
        )
    if problem is not None:
        commands = None
    mutants = list(world.get("mutants") or [])
    return {
        "format": FORMAT,
        "machine": divergence.machine,
        "signature": divergence.signature,
        "hash": short_hash(divergence.signature, mutants),
        "known": known,
        "mutants": mutants,
        "world": world,
        "budget": None
        if budget is None
        else {
            "name": budget.name,
            "max_examples": budget.max_examples,
            "steps": budget.steps,
            "step_timeout": budget.step_timeout,
            "minutes": budget.minutes,
        },
        "seed": seed,
        "versions": _versions(),
        "commands": commands,
        "commands_problem": problem,
        "journal": journal,
        "divergence": {
            "step": divergence.step,
            "command": divergence.command,
            "kind": divergence.kind,
            "note": divergence.note,
            "table": [
                {"field": m.field, "model": m.model, "real": m.real, "reason": m.reason}
                for m in divergence.mismatches
            ],
            "text": divergence.render(),
        },
    }


def _display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path.resolve())


def replay_hint(trace: dict[str, Any], path: Path | None) -> str:
    """The lines that end a divergence: the replay command and a pasteable Python snippet."""
    lines = []
    if path is not None:
        lines.append(f"replay: statemodels replay {_display_path(path)}")
    snippet = python_snippet(trace)
    if snippet:
        lines.append("or paste into Python:")
        lines += ["    " + line for line in snippet.splitlines()]
    return "\n".join(lines)


def python_snippet(trace: dict[str, Any]) -> str | None:
    """A few lines of Python that replay the trace's commands, working as printed."""
    if trace.get("commands") is None:
        return None
    commands = [codec.decode(c) for c in trace["commands"]]
    modules: dict[str, set[str]] = {}
    for cmd in commands:
        _collect_types(cmd, modules)
    imports = [f"from {m} import {', '.join(sorted(n))}" for m, n in sorted(modules.items())]
    args = f"{trace['machine']!r}, [{', '.join(repr(c) for c in commands)}]"
    if trace.get("mutants"):
        args += f", mutants={sorted(trace['mutants'])!r}"
    return "\n".join(["from statemodels.replay import replay", *imports, f"print(replay({args}))"])


def _collect_types(value: Any, out: dict[str, set[str]]) -> None:
    import attrs

    if attrs.has(type(value)):
        out.setdefault(type(value).__module__, set()).add(type(value).__qualname__.split(".")[0])
        for field in attrs.fields(type(value)):
            _collect_types(getattr(value, field.name), out)
    elif isinstance(value, list | tuple | set | frozenset):
        for v in value:
            _collect_types(v, out)
    elif isinstance(value, dict):
        for k, v in value.items():
            _collect_types(k, out)
            _collect_types(v, out)


class TraceWriter:
    """The hooks listener that writes traces (subscribed by the pytest plugin)."""

    def __init__(self, directory: str | os.PathLike[str] = DEFAULT_DIR) -> None:
        self.directory = Path(directory)
        self.budget: Budget | None = None
        #: Every trace written this session: path -> its data (the report and summary read it).
        self.written: dict[Path, dict[str, Any]] = {}
        self._known_steps: dict[str, int] = {}
        self._lock = threading.Lock()

    # -- hooks --------------------------------------------------------------------------------

    def run_started(self, budget: Budget) -> None:
        self.budget = budget

    def divergence_seen(self, machine: Any, divergence: Divergence, known: bool) -> None:
        world = worlds.describe(machine)
        setattr(divergence, _WORLD_ATTR, world)
        if not known:
            return
        # A known divergence is never shrunk (it ends its example quietly): keep the shortest
        # example seen so far, written once per length improvement.
        setattr(divergence, _KNOWN_ATTR, True)
        best = self._known_steps.get(divergence.signature)
        if best is None or divergence.steps < best:
            self._known_steps[divergence.signature] = divergence.steps
            self.write(divergence, seed=None, known=True)

    def divergence_reported(self, divergence: Divergence, seed: int | None) -> None:
        path, data = self.write(divergence, seed=seed, known=False)
        # A note, not the message: pytest prints notes after the message and after the notes
        # Hypothesis added (its falsifying example), so how to replay it is what the text ends
        # with. ``str(divergence)`` stays the divergence itself.
        divergence.add_note(replay_hint(data, path))

    # -- files --------------------------------------------------------------------------------

    def write(
        self, divergence: Divergence, *, seed: int | None, known: bool
    ) -> tuple[Path, dict[str, Any]]:
        data = trace_data(divergence, budget=self.budget, seed=seed, known=known)
        folder = self.directory / _safe(divergence.machine)
        path = folder / f"{data['hash']}.json"
        folder.mkdir(parents=True, exist_ok=True)
        text = json.dumps(data, indent=2, sort_keys=False, default=str) + "\n"
        tmp = path.with_suffix(f".json.tmp{os.getpid()}")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)  # readers never see half a trace
        with self._lock:
            self.written[path] = data
        return path, data


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "machine"


def enable(directory: str | os.PathLike[str] = DEFAULT_DIR) -> TraceWriter:
    """Write traces outside pytest too (a script calling ``run_machine``)."""
    writer = TraceWriter(directory)
    hooks.subscribe(writer)
    return writer


def load(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a trace; a missing or foreign file is a one-line error."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise codec.TraceFormatError(
            f"cannot read trace {str(path)!r}: {exc.strerror} (traces are under "
            f"{DEFAULT_DIR}/<machine>/ unless --statemodels-trace-dir says otherwise)"
        ) from None
    except json.JSONDecodeError as exc:
        raise codec.TraceFormatError(
            f"{str(path)!r} is not a trace (bad JSON: {exc.msg})"
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise codec.TraceFormatError(
            f"{str(path)!r} is not a statemodels trace (no 'format': {FORMAT!r})"
        )
    return data
