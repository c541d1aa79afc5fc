"""The supervisor machines against real supervisors: the bundled relay and supervisord.

Run: ``pytest tests/stateful -k supervisor --budget ci``. Every example starts a fresh supervisor
(the bundled relay in ~50 ms, supervisord in a temp dir) and tears it down; the plugin's process
audit fails a test that leaves any process behind.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import threading
import time
from collections.abc import Iterator

import pytest

from statemodels.engine import catch_mutant, eventually, run_machine
from statemodels.errors import ServerError
from statemodels.infra.processes import ProcessIdentity, kill, live_descendants, wait_gone
from statemodels.pytest_plugin import option_value
from statemodels.supervisor import (
    BundledRelay,
    ExponentialBackoff,
    RelayClient,
    RelayConfig,
    RelayPool,
    SupervisordDriver,
    SupervisordServer,
    bundled_policy,
    bundled_relay_machine,
    clear_relay,
    relay_machine,
    supervisord_machine,
)


def test_relay_machine_finds_no_divergence_in_the_bundled_relay() -> None:
    with RelayPool(RelayConfig()) as pool:
        run_machine(lambda: bundled_relay_machine(pool=pool))


@pytest.fixture
def user_relay(request: pytest.FixtureRequest) -> Iterator[tuple[str, ExponentialBackoff]]:
    """The user's relay (``--statemodels-relay-socket``, its backoff from
    ``--statemodels-relay-backoff``) if given, else a bundled relay that the machine drives
    through its control socket alone, as it would drive anyone's relay."""
    initial, factor, cap = option_value(request.config, "relay_backoff")
    external = option_value(request.config, "relay_socket")
    if external:
        yield external, ExponentialBackoff(initial, factor, cap)
        return
    with BundledRelay.start(RelayConfig()) as relay:
        yield relay.socket_path, bundled_policy(relay.config)


def test_relay_machine_drives_a_relay_through_its_control_socket_alone(user_relay) -> None:
    socket_path, policy = user_relay
    run_machine(lambda: relay_machine(socket_path, policy=policy))


def test_a_relay_that_cannot_be_reached_is_a_one_line_error(tmp_path) -> None:
    missing = str(tmp_path / "no-relay.sock")
    with pytest.raises(ServerError) as info:
        relay_machine(missing, policy=ExponentialBackoff(0.1))
    assert missing in str(info.value) and "\n" not in str(info.value)


def test_a_relay_without_worker_rules_is_refused_with_a_one_line_error(tmp_path) -> None:
    path = str(tmp_path / "relay.sock")
    answers = {b'"ListRules"': b'{"Rules": []}', b'"ListWorkers"': b'{"Workers": []}'}
    refusal = b'{"Error": "unknown command WorkerRules"}'
    with _one_shot_server(path, answers, default=refusal), pytest.raises(ServerError) as info:
        clear_relay(RelayClient(path))
    assert "does not answer WorkerRules" in str(info.value) and "\n" not in str(info.value)


@contextlib.contextmanager
def _one_shot_server(path: str, answers: dict[bytes, bytes], *, default: bytes) -> Iterator[None]:
    """A relay stand-in on ``path``: one canned JSON answer per request, in a thread."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen()
    server.settimeout(0.05)
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2.0)
                request = b""
                while chunk := conn.recv(4096):
                    request += chunk
                conn.sendall(answers.get(request, default))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(timeout=2.0)
        server.close()


def test_supervisord_machine_finds_no_divergence_in_supervisord(statemodels_budget) -> None:
    # supervisord's backoff is whole seconds: fewer, shorter examples keep this under ~90 s.
    run_machine(
        lambda: supervisord_machine(),
        max_examples=max(3, statemodels_budget.max_examples // 6),
        stateful_step_count=min(statemodels_budget.steps, 12),
    )


def test_relay_control_socket_is_private_and_survives_garbage() -> None:
    with BundledRelay.start(RelayConfig()) as relay:
        mode = stat.S_IMODE(os.stat(relay.socket_path).st_mode)
        assert mode == 0o600, oct(mode)
        client = RelayClient(relay.socket_path)
        for payload in (b"{", b"\xff", b'"Nope"', b"x" * (relay.config.max_request + 10)):
            response, took = client.request(payload, raw=True)
            assert "Error" in response, (payload[:20], response)
            assert took < 0.1
        assert client.request("Ping")[0] == {"Success": "pong"}


#: One rule on eth0: a relay with it runs one worker, the one these tests stop and resume.
ETH0_RULE = {
    "input_interface": "eth0",
    "input_group": "239.1.1.1",
    "input_port": 5000,
    "outputs": [{"group": "239.2.2.2", "port": 6000, "interface": "eth1"}],
}


def test_faults_left_by_an_interface_retired_mid_episode_do_not_reach_its_next_worker() -> None:
    """Two spawns of eth0 are armed to crash; its rule moves to eth1 after the first crash,
    retiring eth0 mid-episode. The next eth0 worker is a fresh episode: the model plans it
    clean, so the crash left over must not fire (it did, as an unplanned backoff)."""
    from statemodels.supervisor.commands import Action, AddRule, FailSpawns, Rule

    machine = bundled_relay_machine(RelayConfig())
    try:
        machine.first_rule(ETH0_RULE | {"rule_id": "first", "input_interface": "lo"})
        machine.perform(Action(FailSpawns("eth0", 2)))
        moving = ETH0_RULE | {"rule_id": "a"}
        machine.perform(Action(AddRule(Rule.from_json(moving)), settle=False))
        eventually(lambda: machine.relay.crashed_since_mark("eth0"), within=2.0)
        output = {**moving["outputs"][0], "interface": "eth0"}
        moved = moving | {"input_interface": "eth1", "outputs": [output]}
        machine.perform(Action(AddRule(Rule.from_json(moved)), settle=False))
        assert "eth0" not in machine.state.slots
        machine.perform(Action(AddRule(Rule.from_json(ETH0_RULE | {"rule_id": "b"})), settle=True))
        machine.model_view_matches_real()  # a Divergence (respawn/backoffs_ms) would raise
    finally:
        machine.teardown()


def test_a_stopped_worker_answers_error_quickly_and_resumes() -> None:
    with BundledRelay.start(RelayConfig(worker_timeout=0.075)) as relay:
        client = RelayClient(relay.socket_path)
        rule = ETH0_RULE
        assert "Success" in client.request({"AddRule": rule})[0]
        pid = _running_pid(client, "eth0")
        ident = ProcessIdentity.of(pid)
        os.kill(pid, 19)  # SIGSTOP
        response, took = client.request({"WorkerRules": {"interface": "eth0"}})
        assert "Error" in response and 0.07 < took < 0.1, (response, took)
        assert "Success" in client.request({"AddRule": {**rule, "input_port": 5001}})[0]
        os.kill(pid, 18)  # SIGCONT: the add queued meanwhile applies
        response, _ = client.request({"WorkerRules": {"interface": "eth0"}})
        assert sorted(r["input_port"] for r in response["WorkerRules"]["rules"]) == [5000, 5001]
        assert ident.alive()
        assert _running_pid(client, "eth0") == pid  # never restarted while stopped


def test_a_worker_slower_than_the_relay_s_timeout_is_asked_again_not_a_divergence() -> None:
    """On a loaded machine a worker can miss the relay's 75 ms: the driver asks again for up
    to a second (a correct relay said truthfully that its worker was slow); a worker that
    stays silent is still reported."""
    from statemodels.supervisor.driver import SLOW_WORKER_GRACE, RelayDriver

    with BundledRelay.start(RelayConfig(worker_timeout=0.075)) as relay:
        client = RelayClient(relay.socket_path)
        rule = ETH0_RULE
        assert "Success" in client.request({"AddRule": rule})[0]
        pid = _running_pid(client, "eth0")
        driver = RelayDriver(client)
        os.kill(pid, 19)  # SIGSTOP: the worker misses two or three timeouts ...
        resume = threading.Timer(0.25, os.kill, (pid, 18))  # ... then answers (SIGCONT)
        resume.start()
        try:
            out = driver._worker_rules("eth0")
        finally:
            resume.join()
        assert out.error is None and [r.input_port for r in out.values["rules"]] == [5000]
        os.kill(pid, 19)  # stopped for good (not by the driver): reported after the grace
        try:
            start = time.monotonic()
            out = driver._worker_rules("eth0")
            waited = time.monotonic() - start
        finally:
            os.kill(pid, 18)
        assert out.error == "Error" and "did not answer within" in out.detail
        assert SLOW_WORKER_GRACE <= waited < SLOW_WORKER_GRACE + 1.0


def test_a_worker_that_exits_unasked_after_its_restart_does_not_skew_the_schedule() -> None:
    """The restart schedule times the first worker the relay started after the mark. If that
    worker then exits by itself (here: a SIGTERM from outside, a clean exit the relay restarts
    at once), the later replacement is not the restart the mark provoked, and timing it would
    read as a late restart of a correct relay (seen once on a loaded CI machine: 0.72 s)."""
    from statemodels.supervisor.driver import RelayDriver

    with BundledRelay.start(RelayConfig()) as relay:
        driver = RelayDriver(RelayClient(relay.socket_path), faults=relay)
        driver.mark("eth0")  # as the machine marks a first AddRule
        assert "Success" in driver.client.request({"AddRule": ETH0_RULE})[0]
        first = driver.worker_status("eth0")["identity"]
        time.sleep(0.3)
        os.kill(first.pid, 15)
        assert wait_gone(first, timeout=2.0)

        def replaced() -> bool:
            ident = driver.worker_status("eth0")["identity"]
            return ident is not None and ident != first

        eventually(replaced, within=2.0, what="the relay restarted the SIGTERMed worker")
        final = driver.worker_status("eth0")["identity"]
        timeline = driver.restart_timeline("eth0", final)
        assert timeline["attempts"] == 0
        assert -0.02 <= timeline["gap1"] < 0.2, timeline
        # Without that first look the replacement is all the driver knows of, and it reads late.
        driver.mark("eth0", at=driver.marks["eth0"])
        assert driver.restart_timeline("eth0", final)["gap1"] >= 0.25


def test_nothing_outlives_a_relay_whose_supervisor_was_sigkilled() -> None:
    before = {p.pid for p in live_descendants()}
    relay = BundledRelay.start(RelayConfig())
    client = RelayClient(relay.socket_path)
    for iface in ("eth0", "eth1"):
        rule = {
            "input_interface": iface,
            "input_group": "239.1.1.1",
            "input_port": 5000,
            "outputs": [{"group": "239.2.2.2", "port": 6000, "interface": "lo"}],
        }
        client.request({"AddRule": rule})
    workers = [ProcessIdentity.of(_running_pid(client, i)) for i in ("eth0", "eth1")]
    kill(relay.identity)
    # PDEATHSIG: the workers die with their supervisor, before anyone cleans up.
    for ident in workers:
        assert wait_gone(ident, timeout=2.0), ident
    relay.stop()
    assert not os.path.exists(relay.directory)
    assert [p.pid for p in live_descendants(exclude_pids=before)] == []


def _running_pid(client: RelayClient, iface: str, within: float = 2.0) -> int:
    def running() -> int:
        workers = client.request("ListWorkers")[0]["Workers"]
        pids = [w["pid"] for w in workers if w["interface"] == iface and w["status"] == "Running"]
        assert pids, workers
        return int(pids[0])

    return eventually(running, within=within, what=f"a Running worker for {iface}")


def test_nothing_outlives_a_supervisord_that_was_sigkilled() -> None:
    before = {p.pid for p in live_descendants()}
    server = SupervisordServer.start()
    try:
        driver = SupervisordDriver(server)
        programs = [driver.identity_of(name) for name in ("alpha", "beta")]
        assert all(programs), programs
        kill(server.process.identity)
        for ident in programs:
            assert ident is not None and wait_gone(ident, timeout=2.0), ident
    finally:
        server.stop()
    assert not server.directory.exists()
    assert [p.pid for p in live_descendants(exclude_pids=before)] == []


@pytest.mark.mutant
def test_relay_machine_catches_a_seeded_bug() -> None:
    """The sample hunt of a first run; every mutant is hunted in tests/mutants/.

    The quickest relay catch (a second or two): port-zero-accepted, the sample before, took
    110-140 s, most of the README's first command."""
    with RelayPool(RelayConfig(mutants=frozenset({"id-without-protocol"}))) as pool:
        found = catch_mutant(lambda: bundled_relay_machine(pool=pool), budget="ci", max_steps=3)
    assert found.signature.startswith("RelayMachine/view/rules:differs"), found.signature
