"""Every seeded bug of the bundled reload system is caught within ``ci``, shrunk, for its symptom.

The orchestrator's bugs run under the bundled orchestrator (through the Process Compose driver);
the build step's bugs under supervisord too. A catch must name the mutant's symptom in its
signature: a divergence by some side effect does not count.
"""

from __future__ import annotations

import re

import pytest

from statemodels.engine import catch_mutant
from statemodels.errors import ConfigurationError
from statemodels.reload import MUTANTS, FleetPool, ReloadMachine
from statemodels.reload.system.fleet import BUILDER_MUTANTS

# What the machine must see of each bug (a pattern of the divergence signature).
SYMPTOMS = {
    "stale-binary": r"/Reload/.*exe_sha256:\w+:changed|/Reload/.*commit:\w+:changed",
    "restart-noop": r"/Reload(Many)?/.*identity:\w+:not a new process",
    "shell-wrapper-127": r"/Reload(Many)?/.*(healthy_s|identity):\w+:(out of range|no process)",
    "no-reconnect": r"/view/dep_pid:relay:",
    "cascade-all": r"/Reload(Many)?/identity:\w+:changed",
    "fd-leak": r"/Resources/fds:orchestrator:grew beyond tolerance",
    "stale-pid": r"/Reload(Many)?/.*identity:\w+:no process",
    "missing-binary-success": r"/Reload/.*running:\w+:differs",
    "no-reap": r"/view/.*zombies:differs",
    "torn-build": r"/Build/describes_binary:differs",
    "wrong-checksum": r"/Build/describes_binary:differs",
    "stale-timestamp": r"/Build/timestamp:not later",
}


# Shrunk repro lengths wanted: one reload shows most bugs; a leak needs a baseline, a rapid
# cycle and a second sample (the Rapid sequence: 3 x (Build, Reload) and 2 samples).
MAX_STEPS = {"fd-leak": 10, "missing-binary-success": 4}


def test_every_reload_mutant_has_a_symptom() -> None:
    assert sorted(SYMPTOMS) == sorted(MUTANTS)
    assert len(MUTANTS) >= 10


@pytest.mark.mutant
@pytest.mark.parametrize("mutant", sorted(MUTANTS))
def test_reload_machine_catches(mutant: str) -> None:
    with FleetPool("process-compose", mutants={mutant}) as pool:
        steps = MAX_STEPS.get(mutant, 3)
        found = catch_mutant(lambda: ReloadMachine.on(pool), budget="ci", max_steps=steps)
    assert found.signature.startswith("ReloadMachine/")
    assert re.search(SYMPTOMS[mutant], found.signature), found.signature


@pytest.mark.mutant
def test_reload_machine_catches_a_torn_build_under_supervisord_too() -> None:
    # The build step's bugs do not depend on the orchestrator: one of them under a real
    # supervisord shows the machine catches it there as well.
    mutant = "torn-build"
    assert mutant in BUILDER_MUTANTS
    with FleetPool("supervisord", mutants={mutant}) as pool:
        found = catch_mutant(lambda: ReloadMachine.on(pool), budget="ci", max_steps=3)
    assert re.search(SYMPTOMS[mutant], found.signature), found.signature


def test_an_unknown_mutant_is_a_one_line_error_listing_the_valid_ones() -> None:
    with pytest.raises(ConfigurationError) as info:
        FleetPool("process-compose", mutants={"no-such-bug"})
    message = str(info.value)
    assert "'no-such-bug'" in message and "restart-noop" in message and "\n" not in message


def test_orchestrator_mutants_under_supervisord_are_refused_in_one_line() -> None:
    with pytest.raises(ConfigurationError) as info:
        FleetPool("supervisord", mutants={"restart-noop"})
    assert "process-compose" in str(info.value) and "\n" not in str(info.value)


# -- the NATS fleet: the real nats-server, nats-py clients, records through JetStream -----------

# What the machine must see of each bug of the NATS fleet's clients.
NATS_SYMPTOMS = {
    "collector-drops-buffer": r"^NatsReloadMachine/CheckRecords/.*lost:differs",
    "writer-retry-duplicates": r"^NatsReloadMachine/CheckRecords/.*duplicated:differs",
    "dependent-never-reconnects": r"^NatsReloadMachine/view/.*dep_pid:sub:",
    "collector-newest-first": r"^NatsReloadMachine/CheckRecords/.*out_of_order:differs",
    "collector-ms-timestamps": r"^NatsReloadMachine/CheckRecords/.*retimed:differs",
}

# A data bug needs its run: StartWriter, the reload, CheckRecords (plus the opening Inspect).
NATS_MAX_STEPS = {
    "collector-drops-buffer": 4,
    "writer-retry-duplicates": 4,
    "collector-newest-first": 4,
    "collector-ms-timestamps": 4,
}


def test_every_nats_mutant_has_a_symptom() -> None:
    from statemodels.reload.system.natsfleet import NATS_MUTANTS

    assert sorted(NATS_SYMPTOMS) == sorted(NATS_MUTANTS)


@pytest.mark.mutant
@pytest.mark.parametrize("mutant", sorted(NATS_SYMPTOMS))
def test_nats_reload_machine_catches(mutant: str, statemodels_redis) -> None:
    from statemodels.reload.natsmachine import NatsReloadMachine
    from statemodels.reload.system.natsfleet import NatsFleet

    fleet = NatsFleet.create(statemodels_redis.url, mutants={mutant})
    with FleetPool("process-compose", fleet=fleet) as pool:
        found = catch_mutant(
            lambda: NatsReloadMachine.on(pool),
            budget="ci",
            max_steps=NATS_MAX_STEPS.get(mutant, 3),
            example_steps=6,
        )
    print(f"\n{mutant}: {found.steps} steps, {found.signature}")
    assert re.search(NATS_SYMPTOMS[mutant], found.signature), found.signature


@pytest.mark.mutant
def test_a_cached_broker_binary_is_seen_by_its_exe_alone(statemodels_redis) -> None:
    # nats-server reports no commit: an orchestrator that execs a cached copy of the broker is
    # caught by sha256(/proc/<pid>/exe) against the version file, on the seeds' single reload.
    from statemodels.reload.scenarios import run_scenario
    from statemodels.reload.system.natsfleet import NatsFleet

    fleet = NatsFleet.create(statemodels_redis.url)
    with FleetPool("process-compose", mutants={"stale-binary"}, fleet=fleet) as pool:
        result = run_scenario("test:reload:single:nats", pool)
    assert not result.passed and result.divergence is not None
    assert "exe_sha256:nats" in result.divergence, result.divergence


@pytest.mark.mutant
def test_nats_reload_machine_catches_a_restart_that_does_nothing(statemodels_redis) -> None:
    from statemodels.reload.natsmachine import NatsReloadMachine
    from statemodels.reload.system.natsfleet import NatsFleet

    fleet = NatsFleet.create(statemodels_redis.url)
    with FleetPool("process-compose", mutants={"restart-noop"}, fleet=fleet) as pool:
        found = catch_mutant(
            lambda: NatsReloadMachine.on(pool), budget="ci", max_steps=3, example_steps=6
        )
    assert re.search(r"^NatsReloadMachine" + SYMPTOMS["restart-noop"], found.signature), (
        found.signature
    )
