"""Per-machine run statistics for the end-of-session summary, and known divergences.

The engine records every example, step, command and divergence here; the pytest plugin prints a
block per machine at the end of the session::

    statemodels: machine           examples steps median-step diverged known changed-model
                 PggitMachine            60  1680     1.2 ms        0     0   62%
        CreateTable  412  ok 81%  failed 19%  changed 81%

Generation statistics (per command kind: how often it ran, succeeded, failed, diverged, and
changed the model's state) show how much of a budget really explores: a step that fails changes
nothing. They count what the search generated: once a run has raised its first divergence,
Hypothesis spends the rest of it replaying and shrinking that example (its steps slide towards
the first, simplest command, thousands of times), so command counts pause until the next run
starts (:func:`run_started`, :func:`divergence_raised`). Examples, steps and step times count
everything.

Known divergences are signatures (see :attr:`Divergence.signature`) a user already knows about. A
run that meets one records it here and keeps searching, so one known bug cannot hide the next. A
known signature that never occurred is listed as "known but not seen" (a typo, or a fixed bug).
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import ConfigurationError

if TYPE_CHECKING:
    from .divergence import Divergence

__all__ = [
    "CommandStats",
    "KnownSignature",
    "MachineStats",
    "absorb",
    "examples_started",
    "export",
    "known_not_seen",
    "known_signatures",
    "legacy_hints",
    "load_known",
    "match_known",
    "note_example",
    "registry",
    "set_known",
]


@attrs.define
class CommandStats:
    """What the steps of one command kind did."""

    ran: int = 0
    ok: int = 0
    failed: int = 0
    diverged: int = 0
    hung: int = 0
    changed: int = 0


@attrs.define
class MachineStats:
    """What one machine did in this process."""

    name: str
    examples: int = 0
    steps: int = 0
    step_seconds: list[float] = attrs.field(factory=list)
    divergences: Counter[str] = attrs.field(factory=Counter)
    known_hits: Counter[str] = attrs.field(factory=Counter)
    commands: dict[str, CommandStats] = attrs.field(factory=dict)
    #: Divergences caught by mutant hunts (expected), kept apart from real ones.
    mutants_caught: Counter[str] = attrs.field(factory=Counter)

    # Keep memory bounded on deep runs: the median of a large sample is as good as of all.
    _SAMPLE_LIMIT = 100_000

    def record_step(self, seconds: float) -> None:
        self.steps += 1
        if len(self.step_seconds) < self._SAMPLE_LIMIT:
            self.step_seconds.append(seconds)

    def record_command(self, kind: str, result: str, changed: bool) -> None:
        """Count one step of command ``kind``: ``result`` is ok, failed, diverged or hung.

        Not counted while a run replays a divergence it raised (see the module docstring)."""
        if _replaying:
            return
        entry = self.commands.setdefault(kind, CommandStats())
        entry.ran += 1
        setattr(entry, result, getattr(entry, result) + 1)
        entry.changed += int(changed)

    def median_step_ms(self) -> float | None:
        return statistics.median(self.step_seconds) * 1e3 if self.step_seconds else None

    def changed_share(self) -> float | None:
        """The share of steps that changed the model's state (None before any step)."""
        ran = sum(c.ran for c in self.commands.values())
        return sum(c.changed for c in self.commands.values()) / ran if ran else None


_registry: dict[str, MachineStats] = {}
_examples_started = 0
_replaying = False


def run_started() -> None:
    """A run (one Hypothesis search) begins: its steps are generation until it fails."""
    global _replaying
    _replaying = False


def divergence_raised() -> None:
    """The run raised a divergence: what follows is shrinking, not generation."""
    global _replaying
    _replaying = True


#: Runs that ended without running a single example (a false green, reported and failed).
empty_runs: list[str] = []


def registry() -> dict[str, MachineStats]:
    """All machines that ran in this process, by name."""
    return _registry


def stats_for(name: str) -> MachineStats:
    return _registry.setdefault(name, MachineStats(name))


def note_example() -> None:
    """Count one example (a machine instance) started in this process."""
    global _examples_started
    _examples_started += 1


def examples_started() -> int:
    """Examples started in this process so far: ``run_machine`` checks it ran at least one."""
    return _examples_started


# -- one run in several processes (pytest-xdist) ---------------------------------------------


def export() -> dict[str, Any]:
    """This process's statistics as JSON-safe data, for the process that prints the summary.

    Under ``pytest -n N`` each worker runs machines in its own process; the controller that
    writes the terminal summary ran none. Each worker hands this to the controller at its end
    (:mod:`statemodels.workers`), which adds it to its own with :func:`absorb`.
    """
    return {
        "machines": [
            {
                "name": s.name,
                "examples": s.examples,
                "steps": s.steps,
                "step_seconds": list(s.step_seconds),
                "divergences": dict(s.divergences),
                "known_hits": dict(s.known_hits),
                "mutants_caught": dict(s.mutants_caught),
                "commands": {kind: attrs.asdict(c) for kind, c in s.commands.items()},
            }
            for s in _registry.values()
        ],
        "empty_runs": list(empty_runs),
        "seen_known": sorted(_seen_known),
        "legacy_hints": dict(_legacy_hints),
    }


def absorb(data: dict[str, Any]) -> None:
    """Add another process's :func:`export` to this one's statistics: counts add up."""
    for m in data.get("machines", []):
        into = stats_for(m["name"])
        into.examples += m["examples"]
        into.steps += m["steps"]
        room = MachineStats._SAMPLE_LIMIT - len(into.step_seconds)
        into.step_seconds.extend(m["step_seconds"][: max(room, 0)])
        into.divergences.update(m["divergences"])
        into.known_hits.update(m["known_hits"])
        into.mutants_caught.update(m["mutants_caught"])
        for kind, c in m["commands"].items():
            entry = into.commands.setdefault(kind, CommandStats())
            for field, n in c.items():
                setattr(entry, field, getattr(entry, field) + n)
    empty_runs.extend(data.get("empty_runs", []))
    _seen_known.update(data.get("seen_known", []))
    _legacy_hints.update(data.get("legacy_hints", {}))


# -- known divergences ------------------------------------------------------------------------


@attrs.frozen
class KnownSignature:
    """One line of a known-divergences file."""

    signature: str
    source: str = ""  # "file.txt:12", for messages


_known: tuple[KnownSignature, ...] = ()
_known_set: frozenset[str] = frozenset()
_seen_known: set[str] = set()
_legacy_hints: dict[str, str] = {}

# machine/kind/fields where each field is name:reason (reasons are words and spaces)
_SIGNATURE = re.compile(r"[A-Za-z_][\w.]*/[\w.: ()-]+/[^/]+")
# The position form older versions wrote for a field inside a composite command: op0.error
_POSITION = re.compile(r"(^|,)[a-z]+\d+\.")


def set_known(signatures: Iterable[str | KnownSignature]) -> frozenset[str]:
    """Replace the process-wide set of known divergence signatures."""
    global _known, _known_set
    items = [s if isinstance(s, KnownSignature) else KnownSignature(s.strip()) for s in signatures]
    _known = tuple(k for k in items if k.signature)
    _known_set = frozenset(k.signature for k in _known)
    return _known_set


def known_signatures() -> frozenset[str]:
    return _known_set


def known_entries() -> tuple[KnownSignature, ...]:
    return _known


def match_known(divergence: Divergence) -> str | None:
    """The known signature ``divergence`` matches, or None.

    A line in the position form of older versions (``PggitMachine/Txn/op0.error:succeeded``)
    still matches the divergence it named; the summary then shows the root-cause form to write.
    """
    if divergence.signature in _known_set:
        _seen_known.add(divergence.signature)
        return divergence.signature
    legacy = divergence.legacy_signature
    if legacy != divergence.signature and legacy in _known_set:
        _seen_known.add(legacy)
        _legacy_hints[legacy] = divergence.signature
        return legacy
    return None


def known_not_seen() -> list[KnownSignature]:
    """Known signatures that no divergence of this process matched."""
    return [k for k in _known if k.signature not in _seen_known]


def legacy_hints() -> dict[str, str]:
    """Old position-form known signatures that matched, and the root-cause form to write."""
    return dict(_legacy_hints)


def load_known(path: str | Path) -> list[KnownSignature]:
    """Read signatures from a file: one per line, ``#`` starts a comment, blank lines ignored.

    Raises:
        ConfigurationError: one line -- the file cannot be read, is not UTF-8 (with the line
            number), or a line is not a signature (``Machine/Command/field:reason``).
    """
    name = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read known-divergences file {name!r}: {exc.strerror} "
            "(--statemodels-known / STATEMODELS_KNOWN names a file with one signature per line)"
        ) from None
    out: list[KnownSignature] = []
    for number, line in enumerate(raw.splitlines(), start=1):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigurationError(
                f"{name}:{number}: not UTF-8 text; a known-divergences file holds one signature "
                "per line, e.g. PggitMachine/Commit/error:succeeded"
            ) from None
        text = text.split("#", 1)[0].strip()
        if not text:
            continue
        if not _SIGNATURE.fullmatch(text) or ":" not in text.rsplit("/", 1)[-1]:
            raise ConfigurationError(
                f"{name}:{number}: {text[:80]!r} is not a signature; write "
                "Machine/Command/field:reason as printed after 'signature:' in a divergence"
            )
        out.append(KnownSignature(text, f"{name}:{number}"))
    return out


def is_position_form(signature: str) -> bool:
    """Does ``signature`` name a field by its position in a composite command (``op0.error``)?"""
    return bool(_POSITION.search(signature.rsplit("/", 1)[-1]))
