"""Linearizability checker speed: the 102 Jepsen etcd histories and a 1,000-operation history.

Targets (issue 13): the whole Jepsen set in under 60 s on one core, no history over 10 s; a
1,000-operation history of 10 clients over 10 keys, partitioned per key, in under 1 s. Printed,
never asserted: a loaded machine is slow, not wrong (``tests/properties/test_jepsen_etcd.py``
asserts the verdicts).

    python benchmarks/bench_linearizability.py [--data DIR]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from statemodels.engine import Outcome
from statemodels.engine.history import History, Operation
from statemodels.engine.jepsen import SingleRegister, read_log
from statemodels.engine.linearizability import ModelSpec, check
from statemodels.register import Cas, Get, Incr, Put, RegisterModel

REPO = Path(__file__).resolve().parents[1]


def find_data() -> Path:
    for base in (REPO.parent, *REPO.parent.parents):
        candidate = base / "shared" / "data" / "jepsen-etcd"
        if (candidate / "verdicts.tsv").is_file():
            return candidate
    raise SystemExit(f"no shared/data/jepsen-etcd beside {REPO}: pass --data DIR")


def jepsen(data: Path) -> None:
    lines = (data / "verdicts.tsv").read_text(encoding="utf-8").splitlines()[1:]
    times: dict[str, float] = {}
    disagree = []
    for line in lines:
        name, verdict = line.split("\t")
        history = read_log(data / name)
        start = time.perf_counter()
        result = check(history, SingleRegister(), explain=False)
        times[name] = time.perf_counter() - start
        if result.linearizable is not (verdict.strip() == "true"):
            disagree.append(name)
    slowest = sorted(times, key=times.__getitem__, reverse=True)[:5]
    print(f"jepsen etcd: {len(times)} histories in {sum(times.values()):.2f} s total")
    print("  slowest: " + ", ".join(f"{n} {times[n]:.2f} s" for n in slowest))
    print(f"  disagreeing with the oracle: {disagree or 'none'}")
    start = time.perf_counter()
    explained = 0
    for line in lines:
        name, verdict = line.split("\t")
        if verdict.strip() == "false":
            result = check(read_log(data / name), SingleRegister())
            explained += result.violation is not None
    took = time.perf_counter() - start
    print(f"  the {explained} violations explained (culprit + prefix) in {took:.2f} s")


def big_history(ops: int = 1000, clients: int = 10, keys: int = 10, seed: int = 1) -> History:
    """An atomic system's history: each operation takes effect at an instant inside its span."""
    rng = random.Random(seed)
    names = [f"k{i}" for i in range(keys)]
    free = [0] * clients
    spans = []
    for _ in range(ops):
        client = rng.randrange(clients)
        start = free[client] + rng.randrange(5)
        point = start + rng.randrange(20)
        end = point + rng.randrange(20)
        free[client] = end + 1
        key = rng.choice(names)
        cmd = rng.choice(
            [
                Get(key),
                Put(key, rng.randrange(5)),
                Incr(key, 1),
                Cas(key, rng.choice([None, 0, 1, 2]), rng.randrange(5)),
            ]
        )
        spans.append((point, client, start, end, cmd))
    model = RegisterModel()
    out = []
    for _point, client, start, end, cmd in sorted(spans, key=lambda s: s[0]):
        step = model.apply(cmd)
        model = step.model
        outcome = Outcome.ok(**{name: e.value for name, e in step.expect.items()})
        out.append(Operation(len(out), client, cmd, start, end, "ok", outcome))
    return History.from_operations(out)


def thousand() -> None:
    history = big_history()
    spec = ModelSpec(RegisterModel(), key=lambda cmd: cmd.key)
    for label, chosen, limit in (
        ("partitioned per key", spec, None),
        ("unpartitioned", ModelSpec(RegisterModel()), 10.0),
    ):
        start = time.perf_counter()
        result = check(history, chosen, timeout=limit)
        took = time.perf_counter() - start
        print(
            f"1,000 ops, 10 clients, 10 keys, {label}: {result.verdict} in {took:.3f} s "
            f"({result.partitions} partitions)"
        )
    bad = list(history)
    victim = next(i for i, op in enumerate(bad) if isinstance(op.command, Get))
    bad[victim] = Operation(
        victim, bad[victim].client, bad[victim].command, bad[victim].invoked,
        bad[victim].completed, "ok", Outcome.ok(value=99),
    )  # fmt: skip
    start = time.perf_counter()
    result = check(History(bad), spec)
    took = time.perf_counter() - start
    print(f"same with one impossible read, partitioned: {result.verdict} in {took:.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="the jepsen-etcd folder")
    args = parser.parse_args()
    jepsen(args.data or find_data())
    thousand()


if __name__ == "__main__":
    main()
