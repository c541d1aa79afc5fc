"""The reload machine against real orchestrators: supervisord and the bundled orchestrator
(through the Process Compose driver), the seeds' named scenarios, and one sample hunt.

Run: ``pytest tests/stateful -k reload --budget ci``. Each test starts its own fleet and
orchestrator in a temp dir and removes both; the plugin's process audit fails a test that leaves
any process behind.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator

import pytest

from statemodels.engine import catch_mutant, run_machine
from statemodels.errors import ConfigurationError
from statemodels.infra.processes import exe_sha256, live_descendants, live_identity
from statemodels.reload import (
    BundledFleet,
    BundledOrchestrator,
    FleetPool,
    OrchestratorError,
    ProcessComposeClient,
    ReloadMachine,
)
from statemodels.reload.scenarios import SCENARIOS, report, run_scenario


@pytest.fixture(scope="module", params=["supervisord", "process-compose"])
def pool(request: pytest.FixtureRequest) -> Iterator[FleetPool]:
    with FleetPool(request.param) as fleet_pool:
        yield fleet_pool


@pytest.fixture(autouse=True)
def _pool_is_long_lived(request: pytest.FixtureRequest) -> None:
    # A module-scoped fleet outlives each test on purpose: register it with the process audit.
    if "pool" in request.fixturenames:
        from statemodels.pytest_plugin import long_lived

        long_lived(request.getfixturevalue("pool"))


def test_reload_machine_finds_no_divergence(pool: FleetPool, statemodels_budget) -> None:
    # Fewer, shorter examples than the budget: a step drives a whole fleet (~20-50 ms).
    run_machine(
        lambda: ReloadMachine.on(pool),
        max_examples=max(3, statemodels_budget.max_examples // 12),
        stateful_step_count=min(statemodels_budget.steps, 15),
    )


def test_the_seeds_scenarios_pass_and_print_their_report(pool: FleetPool) -> None:
    results = [run_scenario(name, pool) for name in SCENARIOS]
    text = report(results, orchestrator=pool.kind)
    print("\n" + text)
    failed = [r for r in results if not r.passed]
    assert not failed, "\n\n".join(r.divergence or r.name for r in failed)
    assert f"TOTAL: {len(SCENARIOS)}/{len(SCENARIOS)} passed" in text
    for name in SCENARIOS:
        assert re.search(rf"PASS {re.escape(name)}\s+\(\d+\.\d\ds\)", text), name


def test_sample_hunt_catches_a_restart_that_does_nothing() -> None:
    # The other eleven are in tests/mutants/test_reload_mutants.py.
    with FleetPool("process-compose", mutants={"restart-noop"}) as noop:
        found = catch_mutant(lambda: ReloadMachine.on(noop), budget="ci", max_steps=3)
    assert re.search(r"/Reload(Many)?/.*identity:\w+:not a new process", found.signature), (
        found.signature
    )


def test_a_compiled_build_is_what_runs_after_a_reload() -> None:
    with BundledFleet.create(mode="compile") as fleet, BundledOrchestrator.start(fleet) as pc:
        record = fleet.build("cache")
        pc.client.restart("cache")
        state = pc.client.states()["cache"]
        assert live_identity(state.pid) is not None
        assert exe_sha256(state.pid) == record.checksum == fleet.read_version("cache")["checksum"]
        report_ = fleet.report("cache")
        assert report_ is not None and report_["commit"] == record.commit


def test_a_killed_orchestrator_is_a_one_line_error_within_the_timeout_and_services_live_on():
    before = {p.pid for p in live_descendants()}
    with BundledFleet.create() as fleet, BundledOrchestrator.start(fleet) as pc:
        services = {n: live_identity(s.pid) for n, s in pc.client.states().items()}
        pc.kill()
        client = ProcessComposeClient.unix(str(fleet.directory / "pc" / "pc.sock"), timeout=2.0)
        start = time.monotonic()
        with pytest.raises(OrchestratorError) as info:
            client.restart("broker")
        assert time.monotonic() - start < 2.5
        assert info.value.code == "unreachable" and "\n" not in str(info.value)
        assert all(ident is not None and ident.alive() for ident in services.values())
        pc.relaunch()
        renewed = {n: live_identity(s.pid) for n, s in pc.client.states().items()}
        assert all(renewed[n] not in (None, services[n]) for n in services)
    assert [p.pid for p in live_descendants(exclude_pids=before)] == []
    assert not fleet.directory.exists()


def test_a_token_is_required_when_the_orchestrator_has_one() -> None:
    with BundledFleet.create() as fleet, BundledOrchestrator.start(fleet, token="s3cret") as pc:
        assert "broker" in pc.client.states()
        anonymous = ProcessComposeClient.unix(pc.client.endpoint)
        with pytest.raises(OrchestratorError) as info:
            anonymous.states()
        assert info.value.code == "http-401" and "s3cret" not in str(info.value)


def test_an_unknown_orchestrator_kind_is_a_one_line_error() -> None:
    with pytest.raises(ConfigurationError) as info:
        FleetPool("kubernetes")
    assert "'kubernetes'" in str(info.value) and "\n" not in str(info.value)


# -- a user's fleet ----------------------------------------------------------------------------

# The seeds' own build step: compile, then write the version file (here: atomically, by rename).
_BUILD_SH = """set -e
src="$1"; bin="$2"; ver="$3"
commit=$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \\n')
stamp=$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)
cc -O1 -o "$bin.tmp" "$src" -DSM_COMMIT="\\"$commit\\"" -DSM_TIMESTAMP="\\"$stamp\\""
mv "$bin.tmp" "$bin"
{ echo "commit: $commit"; echo "timestamp: $stamp";
  echo "checksum: $(sha256sum "$bin" | cut -d' ' -f1)"; } > "$ver.tmp"
mv "$ver.tmp" "$ver"
"""


def _fleet_file(fleet: BundledFleet, *, build: str | None = None, extra: str = "") -> str:
    from statemodels.reload.system.fleet import SOURCE

    script = fleet.directory / "build.sh"
    script.write_text(_BUILD_SH)
    lines = [
        "[orchestrator]",
        'kind = "process-compose"',
        f'socket = "{fleet.directory / "pc" / "pc.sock"}"',
    ]
    for spec in fleet.services:
        cmd = build or (
            f"sh {script} {SOURCE} {fleet.binary(spec.name)} {fleet.version_file(spec.name)}"
        )
        lines += [
            f"[services.{spec.name}]",
            f"build = {cmd!r}",
            f'binary = "{fleet.binary(spec.name)}"',
            f'version_file = "{fleet.version_file(spec.name)}"',
            f'health = "unix://{fleet.socket(spec.name)}"',
            f"depends_on = {list(spec.depends_on)!r}",
        ]
    path = fleet.directory / "fleet.toml"
    path.write_text("\n".join(lines).replace("'", '"') + "\n" + extra)
    return str(path)


@pytest.fixture
def user_fleet() -> Iterator[tuple[BundledFleet, str]]:
    """A 'user's' fleet: the bundled services with a shell build script, under a running
    Process Compose-compatible orchestrator the machine only attaches to."""
    with BundledFleet.create() as fleet, BundledOrchestrator.start(fleet):
        yield fleet, _fleet_file(fleet)


def test_the_machine_drives_a_users_fleet_through_its_fleet_file(user_fleet, monkeypatch):
    from statemodels.reload.userfleet import user_fleet_machine

    # Your fleet when STATEMODELS_RELOAD_FLEET names one; else the bundled one, built by a script.
    _, path = user_fleet
    if not os.environ.get("STATEMODELS_RELOAD_FLEET"):
        monkeypatch.setenv("STATEMODELS_RELOAD_FLEET", path)
        monkeypatch.delenv("STATEMODELS_RELOAD_ORCHESTRATOR", raising=False)
    run_machine(lambda: user_fleet_machine(), max_examples=3, stateful_step_count=5)


def test_a_users_fleet_with_bad_input_is_a_one_line_error(user_fleet, tmp_path) -> None:
    from statemodels.reload.userfleet import load_user_fleet

    fleet, path = user_fleet
    cases = {
        str(tmp_path / "nope.toml"): "does not exist",
        _fleet_file(
            fleet, extra='[services.ghost]\nbuild="true"\nbinary="x"\nversion_file="y"\n'
        ): "unknown to process-compose",
    }
    for file, needle in cases.items():
        with pytest.raises(ConfigurationError) as info:
            load_user_fleet(file)
        assert needle in str(info.value) and "\n" not in str(info.value), str(info.value)
    with pytest.raises(ConfigurationError) as info:
        load_user_fleet(path, orchestrator=f"process-compose:{tmp_path / 'no.sock'}")
    assert "unreachable" in str(info.value) and "\n" not in str(info.value)
    failing, _ = load_user_fleet(_fleet_file(fleet, build="echo cannot link >&2; exit 3"))
    from statemodels.errors import ServerError

    with pytest.raises(ServerError) as built:
        failing.build("broker")
    assert "exit 3" in str(built.value) and "cannot link" in str(built.value)
    assert "\n" not in str(built.value)
