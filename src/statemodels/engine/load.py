"""How long the machine made a call wait for a CPU: the excuse a latency bound may take.

A correct server on a loaded 2-core machine answers late, because it waited in the run queue, not
because it is slow. Linux counts that wait in its pressure stall information:
``/proc/pressure/cpu`` holds ``some ... total=<µs>``, the time during which at least one runnable
task was waiting for a CPU. The engine reads the counter before and after every driver call; the
difference (never more than the call's own duration) is what :class:`~statemodels.engine.Latency`
may take away before judging. On an idle machine it is about zero, so a slow system is caught;
under load it grows with the load, so a loaded machine never produces a false divergence.

Where the kernel has no PSI (before 4.20, or disabled), the fallback is coarse and still one-sided:
while the 1-minute load average exceeds the CPU count, a call's whole duration counts as waited.

Example::

    meter = StallMeter()
    mark = meter.mark()
    do_the_call()
    waited = meter.since(mark, duration=elapsed)
"""

from __future__ import annotations

import os

__all__ = ["StallMeter"]

_PSI_CPU = "/proc/pressure/cpu"


def _read_psi_total_us(path: str) -> int | None:
    try:
        with open(path, "rb") as fh:
            first = fh.readline()
    except OSError:
        return None
    # b"some avg10=0.00 avg60=0.00 avg300=0.00 total=12345"
    for part in first.split():
        if part.startswith(b"total="):
            try:
                return int(part[6:])
            except ValueError:
                return None
    return None


class StallMeter:
    """Reads the CPU-wait counter; ``mark()`` before a call, ``since(mark, duration)`` after."""

    def __init__(self, path: str = _PSI_CPU) -> None:
        self._path = path
        self.has_psi = _read_psi_total_us(path) is not None

    def mark(self) -> int | None:
        """The counter now (µs), or ``None`` without PSI."""
        return _read_psi_total_us(self._path) if self.has_psi else None

    def since(self, mark: int | None, *, duration: float) -> float:
        """Seconds of CPU wait since ``mark``, capped at the call's ``duration``."""
        if mark is not None:
            now = _read_psi_total_us(self._path)
            if now is not None:
                return max(0.0, min(duration, (now - mark) / 1e6))
        try:
            loaded = os.getloadavg()[0] > (os.cpu_count() or 1)
        except OSError:
            loaded = False
        return duration if loaded else 0.0
