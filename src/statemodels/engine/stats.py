"""Per-machine run statistics for the end-of-session summary, and known divergences.

The engine records every example, step and divergence here; the pytest plugin prints one line per
machine at the end of the session::

    statemodels: machine           budget examples steps median-step divergences known
                 PggitMachine      ci           60  1680     1.2 ms           0     0

Known divergences are signatures (see :attr:`Divergence.signature`) a user already knows about. A
deep run that meets one records it here and keeps searching, so one known bug cannot hide the next.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import attrs

from ..errors import ConfigurationError

__all__ = ["MachineStats", "known_signatures", "load_known", "registry", "set_known"]


@attrs.define
class MachineStats:
    """What one machine did in this process."""

    name: str
    examples: int = 0
    steps: int = 0
    step_seconds: list[float] = attrs.field(factory=list)
    divergences: Counter[str] = attrs.field(factory=Counter)
    known_hits: Counter[str] = attrs.field(factory=Counter)

    # Keep memory bounded on deep runs: the median of a large sample is as good as of all.
    _SAMPLE_LIMIT = 100_000

    def record_step(self, seconds: float) -> None:
        self.steps += 1
        if len(self.step_seconds) < self._SAMPLE_LIMIT:
            self.step_seconds.append(seconds)

    def median_step_ms(self) -> float | None:
        return statistics.median(self.step_seconds) * 1e3 if self.step_seconds else None


_registry: dict[str, MachineStats] = {}


def registry() -> dict[str, MachineStats]:
    """All machines that ran in this process, by name."""
    return _registry


def stats_for(name: str) -> MachineStats:
    return _registry.setdefault(name, MachineStats(name))


_known: frozenset[str] = frozenset()


def set_known(signatures: Iterable[str]) -> frozenset[str]:
    """Replace the process-wide set of known divergence signatures."""
    global _known
    _known = frozenset(s.strip() for s in signatures if s.strip())
    return _known


def known_signatures() -> frozenset[str]:
    return _known


def load_known(path: str | Path) -> list[str]:
    """Read signatures from a file: one per line, ``#`` starts a comment, blank lines ignored."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read known-divergences file {str(path)!r}: {exc.strerror} "
            "(--statemodels-known / STATEMODELS_KNOWN names a file with one signature per line)"
        ) from None
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line]
