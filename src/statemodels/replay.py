"""Replay: run a trace's commands again, in order, on a fresh world of the same kind.

A trace (:mod:`statemodels.trace`) stores the commands of a divergence as data, so replaying it
does not go through Hypothesis or the strategies at all: edit the strategies, rename a rule,
fix the bug -- the commands still mean what they meant. Three ways in::

    statemodels replay .statemodels/traces/RegisterMachine/3f2a9c0d1b7e.json      # the CLI
    statemodels replay --pytest TRACE > tests/regressions/test_cas.py          # a pytest file

    >>> from statemodels.replay import replay                                  # Python
    >>> from statemodels.register.commands import Delete, Put
    >>> print(replay("RegisterMachine", [Put(key='a', value=0), Delete(key='a')]))
    no longer diverges: 2 commands ran on a fresh RegisterMachine world

A replay is one example: the machine is built by the world factory
(:mod:`statemodels.worlds`), every command goes through ``ModelMachine.execute`` (or the world's
``replay_step``), and the machine's invariants run after each, as Hypothesis runs them. Known
divergences are not searched past here: a replay reports what it sees.
"""

from __future__ import annotations

import pprint
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs

from . import codec, worlds
from . import trace as traces
from .engine import stats
from .engine.divergence import Divergence

__all__ = ["ReplayResult", "pytest_source", "replay", "replay_in_pytest", "replay_trace"]


@attrs.frozen
class ReplayResult:
    """What a replay found: the divergence again, or none (``diverged`` is False)."""

    machine: str
    commands: int
    divergence: Divergence | None

    @property
    def diverged(self) -> bool:
        return self.divergence is not None

    def __str__(self) -> str:
        if self.divergence is not None:
            return self.divergence.render()
        return (
            f"no longer diverges: {self.commands} command{'s' if self.commands != 1 else ''} "
            f"ran on a fresh {self.machine} world"
        )


def replay(
    machine: str,
    commands: Sequence[Any],
    *,
    mutants: Iterable[str] | None = None,
    world: dict[str, Any] | None = None,
    target: str | None = None,
    server: Any = None,
) -> ReplayResult:
    """Run ``commands`` in order on a fresh world of ``machine``'s kind.

    Args:
        machine: the machine's name as a trace records it (``"RegisterMachine"``).
        commands: command objects (a trace's, decoded).
        mutants: seeded bugs to run the bundled system with (``None``: the world's, or none).
        world: the trace's world description (system settings such as a relay's timings).
        target: the user's system (a Redis URL, a PostgreSQL DSN) instead of a bundled one.
        server: an already running server (a pytest fixture's) to build the world on.
    """
    kind = worlds.get_world(machine)
    description = dict(world or {})
    if mutants is not None:
        description["mutants"] = sorted(mutants)
    step = kind.replay_step or (lambda m, cmd: m.execute(cmd))
    previous = stats.known_signatures()
    stats.set_known(())  # a replay reports what it sees
    try:
        with kind.open(description, target, server) as factory:
            found = _run(factory, step, commands)
    finally:
        stats.set_known(previous)
    return ReplayResult(machine, len(commands), found)


def _run(factory: Any, step: Any, commands: Sequence[Any]) -> Divergence | None:
    machine = factory()
    try:
        # As Hypothesis does: invariants hold from the start, unless initialize rules run first
        # (their commands are the trace's first ones).
        if not getattr(machine, "_initialize_rules_to_run", None):
            _check_invariants(machine)
        for cmd in commands:
            step(machine, cmd)
            _check_invariants(machine)
    except Divergence as found:
        return found
    finally:
        machine.teardown()
    return None


def _check_invariants(machine: Any) -> None:
    for invariant in getattr(machine, "invariants", ()):
        if all(pre(machine) for pre in invariant.preconditions):
            invariant.function(machine)


def replay_trace(
    data: dict[str, Any],
    *,
    mutants: Iterable[str] | None = None,
    target: str | None = None,
    server: Any = None,
) -> ReplayResult:
    """Replay a loaded trace (:func:`statemodels.trace.load`)."""
    if data.get("commands") is None:
        raise codec.TraceFormatError(
            f"this trace of {data.get('machine')} holds no commands as data "
            f"({data.get('commands_problem') or 'none recorded'}): it cannot be replayed"
        )
    commands = [codec.decode(c) for c in data["commands"]]
    chosen = data.get("mutants", []) if mutants is None else mutants
    return replay(
        data["machine"],
        commands,
        mutants=chosen,
        world=data.get("world"),
        target=target,
        server=server,
    )


def replay_in_pytest(data: dict[str, Any], request: Any, mutants: Iterable[str] = ()) -> None:
    """The body of a generated regression test: fail while the trace still diverges."""
    import pytest

    kind = worlds.get_world(data["machine"])
    server = request.getfixturevalue(kind.fixture) if kind.fixture else None
    result = replay_trace(data, mutants=mutants, server=server)
    if result.divergence is not None:
        pytest.fail(f"still diverges:\n{result.divergence.render()}", pytrace=False)


_TEMPLATE = '''\
"""Regression test: {machine} must no longer diverge on these {n} commands.

Written by ``statemodels replay --pytest {source}``. It replays the commands as data (not
through the strategies, so edits to them do not change it) on a fresh world and fails while
the divergence is there. Found as:

{text}
"""

from statemodels.replay import replay_in_pytest

# The seeded bugs the world runs with (a mutant hunt's); [] is the system as shipped.
MUTANTS = {mutants!r}

TRACE = {trace}


def test_{name}_no_longer_diverges(request):
    replay_in_pytest(TRACE, request, MUTANTS)
'''


def pytest_source(data: dict[str, Any], source: str | Path = "TRACE") -> str:
    """A pytest module replaying ``data`` (uses the statemodels plugin's server fixtures)."""
    if data.get("commands") is None:
        raise codec.TraceFormatError(
            f"this trace of {data.get('machine')} holds no commands as data: no test to write"
        )
    keep = ("format", "machine", "signature", "world", "commands")
    minimal = {k: data.get(k) for k in keep}
    minimal["world"] = {k: v for k, v in (data.get("world") or {}).items() if k != "mutants"}
    text = "\n".join("    " + line for line in data["divergence"]["text"].splitlines())
    name = "".join(c if c.isalnum() else "_" for c in data["signature"].lower()).strip("_")
    return _TEMPLATE.format(
        machine=data["machine"],
        n=len(data["commands"]),
        source=source,
        text=text.replace('"""', "'''").replace("\\", "\\\\"),
        mutants=sorted(data.get("mutants") or []),
        trace=pprint.pformat(minimal, width=96, sort_dicts=False),
        name=name[:60] or "trace",
    )


def main(path: str, *, target: str | None, mutants: str | None, as_pytest: bool) -> int:
    """``statemodels replay``: 0 when it no longer diverges, 1 when it does."""
    data = traces.load(path)
    if as_pytest:
        print(pytest_source(data, path), end="")
        return 0
    chosen = None if mutants is None else [m for m in mutants.split(",") if m.strip()]
    result = replay_trace(data, mutants=chosen, target=target)
    print(result)
    if result.divergence is not None:
        print(traces.replay_hint(data, Path(path)).splitlines()[0])
        return 1
    return 0
