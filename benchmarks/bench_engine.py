"""Engine overhead per step: ``ModelMachine.execute`` against a bare driver call.

Runs the toy counter (in-process, no I/O) so what is measured is the engine alone: model apply,
the watchdog thread hand-off, expectation checks and the journal. Prints one table and ratios.

    python benchmarks/bench_engine.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.properties.toy import Add, CounterMachine, CounterSystem

ROUNDS, STEPS = 7, 2000


def per_step(fn) -> float:
    samples = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) / STEPS)
    return statistics.median(samples)


def bare() -> None:
    system = CounterSystem()
    for i in range(STEPS):
        system.run(Add(i % 2))


def engine() -> None:
    machine = CounterMachine(CounterSystem())
    for i in range(STEPS):
        machine.execute(Add(i % 2))
    machine.teardown()


def main() -> None:
    b, e = per_step(bare), per_step(engine)
    print(f"{'path':<28}{'per step':>12}")
    print(f"{'bare driver.run':<28}{b * 1e6:>9.1f} us")
    print(f"{'ModelMachine.execute':<28}{e * 1e6:>9.1f} us")
    print(f"engine overhead per step: {(e - b) * 1e6:.1f} us ({e / b:.1f}x a bare in-process call)")


if __name__ == "__main__":
    main()
