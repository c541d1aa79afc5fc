"""The reload contract as a pure model: what a fleet under an orchestrator must show.

The model never does I/O and never reads a clock. It knows, per service, whether its binary on
disk is intact and whether it should be running, and it states every check as a relation:

- **Build**: the commit is bound, the timestamp is *later* than the last build's, the checksum was
  never seen before in this run, and the version file describes the binary beside it.
- **Reload**: the orchestrator keeps its identity; the service's identity ``(pid, create_time)``
  is new; ``sha256(/proc/<pid>/exe)`` equals the version file's checksum; the commit the service
  reports equals the version file's; it answers its health socket within ``health_within``
  (judged one-sidedly: early is never wrong); every other service keeps its identity.
- **Dependents** reconnect, judged from the dependent's own report: the dependency pid it says it
  holds a connection to is the new process's (in the view, polled for ``view_within``).
- **No zombie, no crash loop**: the orchestrator has no zombie children and every service's
  restart count stays where it was (in the view).
- **Failures**: a reload of a deleted binary leaves the service down as the orchestrator
  documents it (supervisord: fault ``NO_FILE``; Process Compose: not running, ``Error``); a reload
  while the orchestrator is being killed answers within its timeout (success, or the one-line
  ``unreachable``), the other services keep running, and a reload with the orchestrator gone
  fails ``unreachable`` at once; restarting the orchestrator brings up a fresh fleet.
- **Data integrity** (a fleet with a writer): every record the broker acked to the writer is in
  the store once, in the writer's order, with the writer's timestamp -- across reloads of the
  collector and of the broker alike (JetStream with message ids: no loss window to state).
- **Resources**: fds and RSS of the orchestrator and the dependents do not grow beyond a
  tolerance over their first sample (per process identity).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

import attrs

from ..engine import AnyOf, Bind, Bindings, Expect, Fails, Renewed, Step, Within
from .commands import (
    BreakBinary,
    Build,
    CheckRecords,
    Inspect,
    KillOrchestratorDuringReload,
    Reload,
    ReloadMany,
    Resources,
    RestartOrchestrator,
    StartService,
    StartWriter,
    StopService,
)

__all__ = [
    "FreshChecksum",
    "Kept",
    "Later",
    "NoGrowth",
    "PidOf",
    "ReloadModel",
    "Renewed",
    "Tolerances",
]

RUNNING, STOPPED, FAILED, UNKNOWN = "running", "stopped", "failed", "unknown"


# -- expectations the domain needs ---------------------------------------------------------


@attrs.frozen
class Kept(Expect):
    """Equal to the value bound to ``slot`` (an unbound slot binds). Unlike ``Same`` its reason
    carries no value, so signatures stay stable across runs."""

    slot: str

    def check(self, real: Any, bindings: Bindings) -> str | None:
        bound = bindings.get(self.slot)
        return None if bound == real or self.slot not in bindings.slots else "changed"

    def bind(self, real: Any, bindings: Bindings) -> None:
        bindings.slots[self.slot] = real

    def describe(self, bindings: Bindings) -> str:
        return f"same as {self.slot} = {bindings.get(self.slot)!r}"


@attrs.frozen
class FreshChecksum(Expect):
    """A checksum no build produced before in this run; it becomes the value of ``slot``."""

    slot: str

    def check(self, real: Any, bindings: Bindings) -> str | None:
        if not isinstance(real, str) or len(real) != 64:
            return "not a sha256"
        return "seen before in this run" if real in bindings.seen.get("checksum", ()) else None

    def bind(self, real: Any, bindings: Bindings) -> None:
        bindings.seen.setdefault("checksum", set()).add(real)
        bindings.slots[self.slot] = real

    def describe(self, bindings: Bindings) -> str:
        return "a sha256 never built before"


def _parse_time(text: Any) -> datetime.datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


@attrs.frozen
class Later(Expect):
    """An ISO-8601 timestamp strictly later than the one bound to ``slot``; then bound."""

    slot: str

    def check(self, real: Any, bindings: Bindings) -> str | None:
        now = _parse_time(real)
        if now is None:
            return "not an ISO-8601 timestamp"
        before = _parse_time(bindings.get(self.slot))
        return "not later" if before is not None and now <= before else None

    def bind(self, real: Any, bindings: Bindings) -> None:
        bindings.slots[self.slot] = real

    def describe(self, bindings: Bindings) -> str:
        return f"later than {bindings.get(self.slot)!r}"


@attrs.frozen
class PidOf(Expect):
    """A pid (a dependent's report of whom it is connected to) equal to the pid of the process
    identity bound to ``slot``."""

    slot: str

    def check(self, real: Any, bindings: Bindings) -> str | None:
        bound = bindings.get(self.slot)
        pid = getattr(bound, "pid", None)
        if pid is None:
            return None  # nothing known to compare with
        return None if real == pid else "not connected to the current process"

    def describe(self, bindings: Bindings) -> str:
        return f"pid of {self.slot} = {getattr(bindings.get(self.slot), 'pid', None)!r}"


@attrs.frozen
class NoGrowth(Expect):
    """``(identity, amount)``: the amount stays within ``tolerance`` of the first sample taken of
    that identity (bound to ``slot``); a new identity starts a new baseline."""

    slot: str
    tolerance: float

    def check(self, real: Any, bindings: Bindings) -> str | None:
        if not isinstance(real, tuple) or len(real) != 2:
            return "not a sample"
        base = bindings.get(self.slot)
        if not isinstance(base, tuple) or base[0] != real[0]:
            return None
        return "grew beyond tolerance" if real[1] > base[1] + self.tolerance else None

    def bind(self, real: Any, bindings: Bindings) -> None:
        base = bindings.get(self.slot)
        if not isinstance(base, tuple) or base[0] != real[0]:
            bindings.slots[self.slot] = real

    def describe(self, bindings: Bindings) -> str:
        base = bindings.get(self.slot)
        amount = base[1] if isinstance(base, tuple) else "?"
        return f"at most {amount} + {self.tolerance:g}"


# -- the model ------------------------------------------------------------------------------


@attrs.frozen
class Tolerances:
    """Bounds the model states. Timing bounds are upper bounds only (never early)."""

    health_within: float = 5.0
    kill_answer_within: float = 4.0
    fds: int = 1
    rss: int = 8 << 20


def _frozen(mapping: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(mapping.items()))


@attrs.frozen
class ReloadModel:
    """What a correct fleet under ``orchestrator`` (``supervisord`` or ``process-compose``)
    shows. ``apply`` returns a new model, never mutates.

    Args:
        orchestrator: which documented failure shape applies.
        depends_on: service -> the services it holds a connection to.
        reports: the services report their build and dependency over a status socket.
        unbuilt: services that are not built artifacts (a fleet's Python clients): proven by
            their identity and reports, never by their exe (the interpreter's) or a commit.
        silent: services that report no commit of their own (nats-server).
    """

    orchestrator: str
    depends_on: tuple[tuple[str, tuple[str, ...]], ...]
    reports: bool = True
    tolerances: Tolerances = Tolerances()
    states: tuple[tuple[str, str], ...] = ()
    broken: tuple[str, ...] = ()
    orchestrator_up: bool = True
    unbuilt: tuple[str, ...] = ()
    silent: tuple[str, ...] = ()
    writing: bool = False

    @classmethod
    def initial(
        cls, orchestrator: str, depends_on: Mapping[str, tuple[str, ...]], **options: Any
    ) -> ReloadModel:
        states = {name: RUNNING for name in depends_on}
        return cls(orchestrator, _frozen(depends_on), states=_frozen(states), **options)

    # -- queries (the strategies draw from these) ------------------------------------------

    @property
    def services(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.depends_on)

    def state(self, name: str) -> str:
        return dict(self.states)[name]

    def in_state(self, state: str) -> tuple[str, ...]:
        return tuple(n for n, s in self.states if s == state)

    def dependents(self, name: str) -> tuple[str, ...]:
        return tuple(n for n, deps in self.depends_on if name in deps)

    def deps(self, name: str) -> tuple[str, ...]:
        return dict(self.depends_on)[name]

    def reloadable(self) -> tuple[str, ...]:
        """Services a reload must succeed on: binary intact, running or stopped."""
        return tuple(
            n for n, s in self.states if n not in self.broken and s in (RUNNING, STOPPED, FAILED)
        )

    # -- transitions -------------------------------------------------------------------------

    def _with(self, **changes: Any) -> ReloadModel:
        if "states" in changes and isinstance(changes["states"], dict):
            changes["states"] = _frozen(changes["states"])
        return attrs.evolve(self, **changes)

    def _others(self, changed: set[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, state in self.states:
            if name in changed or state == UNKNOWN:
                continue
            out[f"identity:{name}"] = Kept(f"identity:{name}") if state == RUNNING else None
        return out

    def _started(self, names: tuple[str, ...]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in names:
            out[f"identity:{name}"] = Renewed(f"identity:{name}")
            out[f"healthy_s:{name}"] = Within(0.0, self.tolerances.health_within)
            if name in self.unbuilt:
                continue
            out[f"exe_sha256:{name}"] = Kept(f"checksum:{name}")
            if self.reports and name not in self.silent:
                out[f"commit:{name}"] = Kept(f"commit:{name}")
        return out

    def apply(self, cmd: Any) -> Step:
        states = dict(self.states)
        match cmd:
            case Inspect():
                expect: dict[str, Any] = {}
                for name in self.services:
                    for key in ("commit", "timestamp", "checksum"):
                        expect[f"{key}:{name}"] = Bind(f"{key}:{name}")
                return Step(self, expect)
            case Build(service=name):
                expect = {
                    "commit": Bind(f"commit:{name}"),
                    "timestamp": Later(f"timestamp:{name}"),
                    "checksum": FreshChecksum(f"checksum:{name}"),
                    "describes_binary": True,
                }
                broken = tuple(b for b in self.broken if b != name)
                return Step(self._with(broken=broken), expect)
            case BreakBinary(service=name):
                return Step(self._with(broken=tuple(sorted({*self.broken, name}))))
            case Reload(service=name) | KillOrchestratorDuringReload(service=name) if (
                not self.orchestrator_up
            ):
                return Step(self, {"error": Fails("unreachable")})
            case Reload(service=name) if name in self.broken:
                expect = self._others({name})
                if self.orchestrator == "supervisord":
                    expect["error"] = Fails("NO_FILE")
                else:
                    expect[f"running:{name}"] = False
                states[name] = FAILED
                return Step(self._with(states=states), expect)
            case Reload(service=name):
                states[name] = RUNNING
                return Step(
                    self._with(states=states), {**self._others({name}), **self._started((name,))}
                )
            case ReloadMany(services=names):
                for name in names:
                    states[name] = RUNNING
                expect = {**self._others(set(names)), **self._started(tuple(names))}
                return Step(self._with(states=states), expect)
            case StopService(service=name):
                states[name] = STOPPED
                return Step(
                    self._with(states=states), {**self._others({name}), f"identity:{name}": None}
                )
            case StartService(service=name):
                states[name] = RUNNING
                return Step(
                    self._with(states=states), {**self._others({name}), **self._started((name,))}
                )
            case KillOrchestratorDuringReload(service=name):
                expect = {
                    "error": AnyOf(None, "unreachable"),
                    "answered_s": Within(0.0, self.tolerances.kill_answer_within),
                    "one_line": True,
                    **self._others({name}),
                }
                states[name] = UNKNOWN
                return Step(self._with(states=states, orchestrator_up=False), expect)
            case RestartOrchestrator():
                expect = {"orchestrator": Renewed("orchestrator"), **self._started(self.services)}
                for name in self.services:  # a new orchestrator counts restarts from zero
                    expect[f"restarts:{name}"] = Bind(f"restarts:{name}")
                states = {name: RUNNING for name in self.services}
                return Step(self._with(states=states, orchestrator_up=True), expect)
            case Resources():
                expect = {"fds:orchestrator": NoGrowth("fds:orchestrator", self.tolerances.fds)}
                expect["rss:orchestrator"] = NoGrowth("rss:orchestrator", self.tolerances.rss)
                for name, deps in self.depends_on:
                    if deps and states[name] == RUNNING:
                        expect[f"fds:{name}"] = NoGrowth(f"fds:{name}", self.tolerances.fds)
                        expect[f"rss:{name}"] = NoGrowth(f"rss:{name}", self.tolerances.rss)
                return Step(self, expect)
            case StartWriter():
                return Step(self._with(writing=True), {"started": True})
            case CheckRecords():
                expect = {
                    "writer_exit": 0,
                    "records": Within(1, 10**9),
                    "lost": 0,
                    "duplicated": 0,
                    "out_of_order": 0,
                    "retimed": 0,
                }
                return Step(self._with(writing=False), expect)
        raise TypeError(f"ReloadModel cannot apply {cmd!r}")

    def view(self) -> dict[str, Any]:
        """What the idle fleet looks like: identities, claims of running, restart counts, no
        zombie, and every running dependent connected to its running dependency's process."""
        out: dict[str, Any] = {}
        if not self.orchestrator_up:
            out["orchestrator"] = None
            for name, state in self.states:
                if state == RUNNING:
                    out[f"identity:{name}"] = Kept(f"identity:{name}")
            return out
        out["orchestrator"] = Kept("orchestrator")
        out["zombies"] = 0
        states = dict(self.states)
        for name, state in self.states:
            running = state == RUNNING
            out[f"running:{name}"] = running
            out[f"identity:{name}"] = Kept(f"identity:{name}") if running else None
            out[f"restarts:{name}"] = Kept(f"restarts:{name}")
            if self.reports and running:
                for dep in self.deps(name)[:1]:
                    if states[dep] == RUNNING:
                        out[f"dep_pid:{name}"] = PidOf(f"identity:{dep}")
                    elif states[dep] in (STOPPED, FAILED):
                        out[f"dep_pid:{name}"] = 0
        return out
