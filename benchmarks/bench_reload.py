"""Reload machine: each of the seeds' scenarios timed beside the seeds' baselines, and steps/s.

Every scenario runs on a pooled fleet (reset between runs, as the tests do) through the full
contract: model, driver, view invariant. The seeds' baselines are their Taskfile's performance
targets (single < 5 s, parallel < 10 s, cascade < 15 s, rapid x10 < 60 s, data integrity
< 30 s: the NATS fleet's ``test:reload:data:*``); the ratio is baseline / measured (10x = ten
times faster than the target). Steps/s runs the generated search as ``run_machine`` does and
divides executed steps by wall time.

    python benchmarks/bench_reload.py [--runs 3] [--orchestrator process-compose] [--budget smoke]
                                      [--no-nats]
"""

from __future__ import annotations

import argparse
import statistics
import time

from statemodels.engine import get_budget, registry, run_machine
from statemodels.reload import FleetPool, ReloadMachine
from statemodels.reload.scenarios import run_scenario

# scenario -> the seeds' baseline (seconds) it is measured against
BASELINES = {
    "test:reload:single:broker": ("single", 5.0),
    "test:reload:single:relay": ("single", 5.0),
    "test:reload:single:cache": ("single", 5.0),
    "test:reload:multi:parallel": ("parallel", 10.0),
    "test:reload:multi:cascade": ("cascade", 15.0),
    "test:reload:multi:all": ("parallel", 10.0),
    "test:reload:rapid:broker": ("rapid x10", 60.0),
    "test:reload:rapid:relay": ("rapid x10", 60.0),
}


# The NATS fleet's (the real nats-server, nats-py clients, a JetStream collector into Redis).
NATS_BASELINES = {
    "test:reload:single:nats": ("single", 5.0),
    "test:reload:data:collector": ("data", 30.0),
    "test:reload:data:broker": ("data", 30.0),
}


def scenarios(pool: FleetPool, runs: int, baselines: dict[str, tuple[str, float]]) -> None:
    print(f"{'scenario':<30} {'baseline':>10} {'median s':>9} {'max s':>7} {'ratio':>8}")
    for name, (kind, baseline) in baselines.items():
        times = []
        for _ in range(runs):
            result = run_scenario(name, pool)
            if not result.passed:
                print(f"{name:<30} FAILED: {(result.divergence or '').splitlines()[0]}")
                break
            times.append(result.seconds)
        if times:
            median = statistics.median(times)
            label = f"{kind} <{baseline:g}s"
            ratio = baseline / median if median else float("inf")
            print(f"{name:<30} {label:>10} {median:>9.3f} {max(times):>7.3f} {ratio:>7.0f}x")


def nats_scenarios(runs: int) -> None:
    """The NATS fleet under the bundled orchestrator, with a private Redis as the store."""
    from statemodels.infra.redis import RedisServer
    from statemodels.reload.system.natsfleet import NatsFleet

    print("-- process-compose, NATS fleet (nats-server + nats-py, store: Redis)")
    with (
        RedisServer.start() as redis,
        FleetPool("process-compose", fleet=NatsFleet.create(redis.url)) as pool,
    ):
        scenarios(pool, runs, NATS_BASELINES)


def steps_per_second(pool: FleetPool, budget: str) -> None:
    before = registry().get("ReloadMachine")
    steps0 = before.steps if before else 0
    start = time.perf_counter()
    try:
        run_machine(lambda: ReloadMachine.on(pool), budget=budget, database=None)
    except Exception as exc:  # a divergence is a finding: print it, keep the numbers
        print(f"generated search diverged: {str(exc).splitlines()[0]}")
    wall = time.perf_counter() - start
    stats = registry()["ReloadMachine"]
    steps = stats.steps - steps0
    print(
        f"generated search ({budget}): {steps} steps in {wall:.1f}s = {steps / wall:.1f} steps/s, "
        f"median step {statistics.median(stats.step_seconds) * 1000:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--orchestrator", choices=["process-compose", "supervisord", "both"], default="both"
    )
    parser.add_argument("--budget", default="smoke")
    parser.add_argument("--no-nats", action="store_true", help="skip the NATS fleet's scenarios")
    args = parser.parse_args()
    get_budget(args.budget)
    kinds = (
        ["process-compose", "supervisord"] if args.orchestrator == "both" else [args.orchestrator]
    )
    for kind in kinds:
        print(f"-- {kind}")
        with FleetPool(kind) as pool:
            scenarios(pool, args.runs, BASELINES)
            steps_per_second(pool, args.budget)
    if not args.no_nats:
        nats_scenarios(args.runs)


if __name__ == "__main__":
    main()
