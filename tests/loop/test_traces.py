"""Trace files in-process: a reported divergence and a known one searched past each write one;
the divergence's notes end with how to replay it; traces never hold a password."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

from statemodels import trace as traces
from statemodels import worlds
from statemodels.engine import Divergence, hooks, run_machine
from statemodels.register import RegisterDriver, RegisterMachine

KNOWN = "RegisterMachine/Delete/existed:differs"


def test_a_known_divergence_searched_past_and_the_reported_one_both_leave_traces(
    statemodels_redis,
) -> None:
    folder = Path(tempfile.mkdtemp(prefix="statemodels-"))
    writer = traces.TraceWriter(folder)
    hooks.subscribe(writer)
    bugs = {"delete-reports-missing", "incr-from-one"}
    try:
        with pytest.raises(Divergence) as info:
            run_machine(
                lambda: RegisterMachine(RegisterDriver(statemodels_redis, bugs)),
                budget="ci",
                known=[KNOWN],
                database=None,
                derandomize=True,
            )
    finally:
        hooks.unsubscribe(writer)
    try:
        by_signature = {d["signature"]: (p, d) for p, d in writer.written.items()}
        reported = info.value.signature
        assert reported != KNOWN and set(by_signature) == {KNOWN, reported}
        _, known = by_signature[KNOWN]
        assert known["known"] is True and known["commands"][-1]["$type"].endswith(".Delete")
        path, found = by_signature[reported]
        assert found["known"] is False and found["mutants"] == sorted(bugs)
        assert (
            path == folder / "RegisterMachine" / f"{traces.short_hash(reported, sorted(bugs))}.json"
        )
        assert json.loads(path.read_text(encoding="utf-8")) == json.loads(json.dumps(found))
        last_note = info.value.__notes__[-1]
        assert last_note.startswith(f"replay: statemodels replay {path}")
        assert "print(replay('RegisterMachine', [" in last_note
    finally:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize(
    ("address", "shown"),
    [
        ("redis://:s3cret@db:6380/0", "redis://:***@db:6380/0"),
        ("postgresql://me:s3cret@db:5433/x", "postgresql://me:***@db:5433/x"),
        ("host=db password=s3cret user=me", "host=db password=*** user=me"),
        ("redis://db:6380/0", "redis://db:6380/0"),
    ],
)
def test_addresses_in_traces_never_hold_a_password(address: str, shown: str) -> None:
    assert worlds.redact(address) == shown


def test_a_relay_trace_replays_on_a_fresh_bundled_relay_with_its_config() -> None:
    from statemodels import codec
    from statemodels.replay import replay_trace
    from statemodels.supervisor import RelayConfig
    from statemodels.supervisor.commands import AddRule, ListRules, Output, Rule

    commands = [
        AddRule(Rule("eth0", "239.1.1.1", 5000, (Output("239.2.2.2", 6000, "lo"),))),
        AddRule(Rule("lo", "239.1.1.2", 0, (Output("239.2.2.3", 6001, "eth0"),))),
        ListRules(),
    ]
    config = RelayConfig(mutants=frozenset({"port-zero-accepted"}))
    data = {
        "format": traces.FORMAT,
        "machine": "RelayMachine",
        "mutants": ["port-zero-accepted"],
        "world": {"config": codec.encode(config), "mutants": ["port-zero-accepted"]},
        "commands": [codec.encode(c) for c in commands],
    }
    found = replay_trace(data)
    assert found.divergence is not None
    assert found.divergence.signature == "RelayMachine/AddRule/error:succeeded"
    assert found.divergence.step == 2
    assert not replay_trace(data, mutants=[]).diverged
