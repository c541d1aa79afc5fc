"""Supervisor machine: restart-detection latency and steps per second, against the bundled relay.

Restart-detection latency is the time from the real respawn (the new worker's kernel start time,
read from ``/proc/<pid>/stat``, 10 ms resolution) to the moment the machine's settle check
observes the new worker Running. It includes the worker's own start-up to Ready (~10-40 ms of
Python start-up) plus the machine's polling interval (5 ms). Also shown: the respawn delay (the
kill to the new worker's start), which should sit just above the configured backoff.

Steps/s runs the relay machine as ``run_machine`` does and divides executed steps by wall time,
once with a fresh relay per example and once with a pooled relay reset between examples (what
the tests use). Wall time includes every restart the machine waits for (backoff 100 ms).

    python benchmarks/bench_supervisor.py [--kills 30] [--budget smoke]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from statemodels.engine import get_budget, registry, run_machine
from statemodels.supervisor import (
    Action,
    KillWorker,
    RelayConfig,
    RelayPool,
    bundled_relay_machine,
)
from statemodels.supervisor.driver import boottime
from statemodels.supervisor.model import worker_slot
from statemodels.supervisor.system.worker import start_boottime

RULE = {
    "rule_id": "bench",
    "name": "",
    "input_interface": "eth0",
    "input_group": "239.1.1.1",
    "input_port": 5000,
    "input_protocol": "udp",
    "outputs": [{"group": "239.2.2.2", "port": 6000, "interface": "lo"}],
}


def restart_latency(kills: int, config: RelayConfig) -> tuple[list[float], list[float]]:
    machine = bundled_relay_machine(config)
    observed_at: list[float] = []
    original = machine.relay.worker_status

    def timed_status(iface: str) -> dict[str, Any]:
        seen = original(iface)
        observed_at.append(boottime())
        return seen

    machine.relay.worker_status = timed_status  # type: ignore[method-assign]
    detection, delay = [], []
    try:
        machine.first_rule(RULE)
        for _ in range(kills):
            machine.perform(Action(KillWorker("eth0"), settle=True))
            identity = machine.bindings.slots[worker_slot("eth0")]
            started = start_boottime(identity.pid)
            detection.append(observed_at[-1] - started)
            delay.append(started - machine.relay.marks["eth0"])
    finally:
        machine.teardown()
    return detection, delay


def steps_per_second(
    budget: str, config: RelayConfig, *, pooled: bool
) -> tuple[float, int, int, float]:
    before = registry().get("RelayMachine")
    steps0 = before.steps if before else 0
    examples0 = before.examples if before else 0
    start = time.perf_counter()
    with RelayPool(config) as pool:
        if pooled:
            run_machine(lambda: bundled_relay_machine(pool=pool), budget=budget, database=None)
        else:
            run_machine(lambda: bundled_relay_machine(config), budget=budget, database=None)
    wall = time.perf_counter() - start
    stats = registry()["RelayMachine"]
    steps, examples = stats.steps - steps0, stats.examples - examples0
    return steps / wall, steps, examples, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--budget", default="smoke")
    args = parser.parse_args()
    config = RelayConfig()
    detection, delay = restart_latency(args.kills, config)
    ms = [d * 1e3 for d in detection]
    print(f"restart detection over {args.kills} SIGKILLs (backoff {config.initial_backoff:g} s):")
    print(
        f"  respawn -> observed Running: median {statistics.median(ms):.1f} ms, "
        f"p90 {sorted(ms)[int(len(ms) * 0.9) - 1]:.1f} ms, max {max(ms):.1f} ms"
    )
    delay_ms = [d * 1e3 for d in delay]
    print(
        f"  kill -> respawn (backoff):  median {statistics.median(delay_ms):.1f} ms "
        f"(configured {config.initial_backoff * 1e3:.0f} ms, ratio "
        f"{statistics.median(delay) / config.initial_backoff:.2f})"
    )
    b = get_budget(args.budget)
    for pooled, how in ((False, "fresh relay per example"), (True, "pooled relay, reset")):
        rate, steps, examples, wall = steps_per_second(args.budget, config, pooled=pooled)
        print(
            f"relay machine, budget {b.name}, {how}: {steps} steps in {examples} examples, "
            f"{wall:.1f} s -> {rate:.1f} steps/s ({wall / examples * 1e3:.0f} ms per example)"
        )


if __name__ == "__main__":
    main()
