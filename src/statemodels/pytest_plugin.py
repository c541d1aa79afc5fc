"""The statemodels pytest plugin: budgets, real-server fixtures, a process audit, a summary.

Loaded through the ``pytest11`` entry point. Importing it is cheap: servers and psutil are imported
only when a fixture or the audit needs them.

- ``--budget {smoke,ci,deep}`` (``STATEMODELS_BUDGET``) and ``--budget-minutes N`` choose how hard
  machines search; ``statemodels_budget`` is the chosen :class:`~statemodels.engine.Budget`.
- ``statemodels_postgres`` / ``statemodels_redis``: one server per session, started on a free
  port, or attached to ``STATEMODELS_PG_DSN`` / ``STATEMODELS_REDIS_URL``.
- Every test is audited: a child process started during the test and still alive after it fails
  the test (and is killed). The session is audited again at the end, after every fixture.
- Nothing outlives the run, whatever kills it: every process and scratch dir carries the run's
  mark, a lifeline process removes them when the run dies (even by SIGKILL), and the next run's
  start-up removes what runs whose owner is dead left (:mod:`statemodels.infra.lifeline`).
- Ctrl-C and SIGTERM tear down in order -- fixtures first, then the audit -- print the summary
  and exit with pytest's interrupt code.
- Every option that is set is checked once at start (:mod:`statemodels.preflight`): one line and
  pytest's usage-error exit, never a traceback per test.
- The terminal summary has a block per machine: examples, steps, median step time, divergences,
  known ones searched past, and what each command kind did (ok, failed, changed the model).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

import pytest

from . import workers
from .engine import budgets, stats
from .errors import ConfigurationError, StatemodelsError
from .options import OPTIONS, resolve

if TYPE_CHECKING:
    from .infra.postgres import PostgresServer
    from .infra.redis import RedisServer

log = logging.getLogger(__name__)

_AUDIT_FAILED = pytest.StashKey[list[str]]()
_LIFELINE = pytest.StashKey[Any]()
_SWEPT = pytest.StashKey[str]()
_SWEEPS_LEFT = pytest.StashKey[int]()
#: Set when the run is interrupted (Ctrl-C, SIGTERM): teardown then cleans without failing tests.
_interrupted = False
#: Seconds a process killed at the very end of a test may take to exit before it counts as leaked.
_EXIT_GRACE = 2.0
#: Prefix of the leak lines of the end-of-session audit (they fail the run, not a test).
_END_OF_SESSION = "(end of session)"


class _HasPids(Protocol):
    def pids(self) -> set[int]: ...


#: Servers meant to outlive a test (session and module fixtures).
_long_lived: list[_HasPids] = []


def long_lived(server: _HasPids) -> None:
    """Exempt a server's processes (and their descendants) from the per-test audit.

    A session or module fixture that starts a server calls this. Without it, a server first
    requested in the middle of a test (``request.getfixturevalue``) would look like that test's
    leak. ``server.pids()`` is asked at audit time, so a server restarted on purpose (an outage
    test) stays exempt. The end-of-session audit still counts everything: by then every fixture
    has stopped its own.
    """
    _long_lived.append(server)


def _long_lived_pids() -> set[int]:
    return set().union(*(server.pids() for server in _long_lived))


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("statemodels", "statemodels: state machines against real systems")
    for option in OPTIONS.values():
        flags = [option.flag] + ([option.alias] if option.alias else [])
        group.addoption(
            *flags,
            dest=option.dest,
            default=None,
            help=f"{option.help} (env {option.env}, ini {option.ini}; default {option.default!r})",
        )
        parser.addini(option.ini, option.help, default=None)


def option_value(config: pytest.Config, name: str) -> Any:
    """Resolve one statemodels option for this pytest run (flag > env > ini > default)."""
    option = OPTIONS[name]
    flag = config.getoption(option.dest)
    return resolve(
        name,
        flag=option.convert(flag) if isinstance(flag, str) else flag,
        ini=config.getini(option.ini),
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "mutant: a seeded bug the machine must catch")
    config.addinivalue_line(
        "markers", "sweep: a full sweep (weekly, or with --sweeps on): deselected otherwise"
    )
    try:
        chosen = budgets.get_budget(option_value(config, "budget"))
        budgets.activate(chosen.with_minutes(option_value(config, "budget_minutes")))
        _use_shared_example_database(option_value(config, "github_db"))
        known_file = option_value(config, "known")
        stats.set_known(stats.load_known(known_file) if known_file else ())
        from .preflight import check_options

        check_options({name: option_value(config, name) for name in OPTIONS})

        from . import session  # the user's loop: traces, report, live progress (issue 12)

        session.configure(config, option_value)
    except StatemodelsError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[_AUDIT_FAILED] = []
    # Orphans of daemonising children are re-parented to us, so the audit can see and reap them.
    from .infra.lifeline import start_run, unwind_on_sigterm
    from .infra.processes import become_subreaper

    become_subreaper()
    lifeline, swept = start_run()
    config.stash[_LIFELINE] = lifeline
    config.stash[_SWEPT] = swept.describe() if swept else ""
    unwind_on_sigterm()


def pytest_unconfigure(config: pytest.Config) -> None:
    lifeline = config.stash.get(_LIFELINE, None)
    if lifeline is not None:
        lifeline.close()


def pytest_keyboard_interrupt(excinfo: Any) -> None:
    global _interrupted
    _interrupted = True


def _lifeline_pids(config: pytest.Config) -> set[int]:
    lifeline = config.stash.get(_LIFELINE, None)
    return {lifeline.pid} if lifeline is not None else set()


def _use_shared_example_database(repository: str | None) -> None:
    """Read the deep search's saved examples (Hypothesis's GitHub-artifact database pattern).

    Writes still go to the local ``.hypothesis/examples``; the artifact is read-only, so a pull
    request can replay what the weekly search found but never corrupt it.
    """
    if not repository:
        return
    owner, _, repo = repository.partition("/")
    if not owner or not repo:
        raise ConfigurationError(
            f"github_db must look like 'owner/repo' (got {repository!r}): "
            "--statemodels-github-db or STATEMODELS_GITHUB_DB"
        )
    from hypothesis import settings
    from hypothesis.database import (
        DirectoryBasedExampleDatabase,
        GitHubArtifactDatabase,
        MultiplexedDatabase,
        ReadOnlyDatabase,
    )

    shared = GitHubArtifactDatabase(owner, repo, artifact_name="hypothesis-example-db")
    local = DirectoryBasedExampleDatabase(".hypothesis/examples")
    settings.register_profile(
        "statemodels-shared-db", database=MultiplexedDatabase(local, ReadOnlyDatabase(shared))
    )
    settings.load_profile("statemodels-shared-db")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the ``sweep`` tests unless sweeps are on or ``-m`` names them.

    A sweep (every generated mutant, a long hunt) is what the weekly workflow runs; every push
    runs the catalogue and a sample. Deselected, not skipped: the summary says how many and how
    to run them, and no skip stands in for a missing feature.
    """
    wanted = option_value(config, "sweeps") or "sweep" in (config.getoption("markexpr") or "")
    if wanted:
        return
    sweeps = [item for item in items if item.get_closest_marker("sweep") is not None]
    if not sweeps:
        return
    items[:] = [item for item in items if item.get_closest_marker("sweep") is None]
    config.hook.pytest_deselected(items=sweeps)
    config.stash[_SWEEPS_LEFT] = len(sweeps)


def pytest_report_header(config: pytest.Config) -> list[str]:
    b = budgets.active()
    box = f", time box {b.minutes:g} min" if b.minutes else ""
    lines = [
        f"statemodels: budget {b.name} ({b.max_examples} examples x {b.steps} steps, "
        f"step timeout {b.step_timeout:g}s{box})"
    ]
    swept = config.stash.get(_SWEPT, "")
    if swept:
        lines.append(swept)
    return lines


@pytest.fixture(scope="session")
def statemodels_budget() -> budgets.Budget:
    """The active example budget."""
    return budgets.active()


@pytest.fixture(scope="session")
def statemodels_postgres(pytestconfig: pytest.Config) -> Iterator[PostgresServer]:
    """A PostgreSQL server for the session: attached (``STATEMODELS_PG_DSN``) or started."""
    from .infra.postgres import PostgresServer

    dsn = option_value(pytestconfig, "pg_dsn")
    server = PostgresServer.attach(dsn) if dsn else PostgresServer.start()
    long_lived(server)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def statemodels_redis(pytestconfig: pytest.Config) -> Iterator[RedisServer]:
    """A Redis server for the session: attached (``STATEMODELS_REDIS_URL``) or started."""
    from .infra.redis import RedisServer

    url = option_value(pytestconfig, "redis_url")
    server = RedisServer.attach(url) if url else RedisServer.start()
    long_lived(server)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _statemodels_process_audit(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that leaves a child process alive; kill what it left.

    Processes alive before the test, and servers registered with :func:`long_lived` (with
    their own children, such as Postgres backends), are not the test's doing and are left alone.
    """
    from .infra import processes

    before = {p.pid for p in processes.live_descendants()}
    yield
    leaked: list[Any] = []

    def settled() -> bool:
        leaked[:] = processes.live_descendants(exclude_pids=before | _long_lived_pids())
        return not leaked

    # A process the test just killed may need a moment to exit; never more than the grace.
    if processes.poll_until(settled, timeout=_EXIT_GRACE):
        return
    lines = [processes.describe(p) for p in leaked]
    for p in leaked:
        processes.kill_tree(p.pid, timeout=5.0)
    if _interrupted:
        return  # torn down mid-test by Ctrl-C/SIGTERM: not the test's leak, and now gone
    request.config.stash[_AUDIT_FAILED].extend(lines)
    pytest.fail(
        f"{request.node.nodeid} left {len(lines)} process(es) alive (now killed):\n  "
        + "\n  ".join(lines),
        pytrace=False,
    )


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """After every fixture is gone, nothing we started may survive.

    ``trylast``: pytest tears session fixtures down in its own ``pytest_sessionfinish`` when a
    run is interrupted; auditing before that killed PostgreSQL under its janitor's teardown.
    """
    from .infra import processes

    survivors: list[Any] = []
    exempt = _lifeline_pids(session.config)

    def settled() -> bool:
        survivors[:] = processes.live_descendants(exclude_pids=exempt)
        return not survivors

    config = session.config
    if not processes.poll_until(settled, timeout=_EXIT_GRACE):
        lines = [processes.describe(p) for p in survivors]
        for p in survivors:
            processes.kill_tree(p.pid, timeout=5.0)
        config.stash[_AUDIT_FAILED].extend(f"{_END_OF_SESSION} {line}" for line in lines)
    # A worker's exit status has already gone to the controller: its leaks fail the run there.
    audit: list[str] = config.stash[_AUDIT_FAILED]
    leaked = any(line.startswith(_END_OF_SESSION) for line in audit)
    if leaked and session.exitstatus != pytest.ExitCode.INTERRUPTED:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    workers.hand_over(
        config,
        "plugin",
        {
            "stats": stats.export(),
            "audit": list(audit),
            "sweeps_left": config.stash.get(_SWEEPS_LEFT, 0),
        },
    )


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """pytest-xdist: add a finished worker's statistics, leaks and sweep count to ours."""
    data = workers.received(node, "plugin")
    if data is None:
        return
    config = node.config
    stats.absorb(data["stats"])
    config.stash[_AUDIT_FAILED].extend(data["audit"])
    # Every worker collects the whole suite, so each deselected the same sweeps.
    config.stash[_SWEEPS_LEFT] = max(config.stash.get(_SWEEPS_LEFT, 0), data["sweeps_left"])


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    tr = terminalreporter
    for line in summary_lines():
        if line.startswith("== "):
            tr.section(line[3:], red="leaked" in line or "no example" in line)
        else:
            tr.write_line(line)
    left = config.stash.get(_SWEEPS_LEFT, 0)
    if left:
        tr.write_line(f"statemodels: {left} sweep test(s) deselected (run them: --sweeps on)")
    leaked = config.stash.get(_AUDIT_FAILED, [])
    if leaked:
        tr.section("statemodels: leaked processes", red=True)
        for line in leaked:
            tr.write_line(line)


def summary_lines() -> list[str]:
    """The statemodels block of the terminal summary (``== `` starts a section)."""
    rows = sorted(stats.registry().values(), key=lambda s: s.name)
    out: list[str] = []
    if rows:
        out.append("== statemodels")
        out.append(f"budget: {budgets.active().name}")
        out.append(
            f"{'machine':<28} {'examples':>8} {'steps':>7} {'median step':>12} {'diverged':>8} "
            f"{'known':>5} {'mutants':>7}  changed-model"
        )
        for s in rows:
            median = s.median_step_ms()
            med = f"{median:.2f} ms" if median is not None else "-"
            share = s.changed_share()
            changed = f"{share:.0%}" if share is not None else "-"
            out.append(
                f"{s.name:<28} {s.examples:>8} {s.steps:>7} {med:>12} "
                f"{sum(s.divergences.values()):>8} {sum(s.known_hits.values()):>5} "
                f"{sum(s.mutants_caught.values()):>7}  {changed}"
            )
            # Each divergence, with its replay command, is listed under "statemodels: divergences".
            for signature, count in sorted(s.known_hits.items()):
                out.append(f"    known, searched past ({count}x): {signature}")
            out.extend(_command_lines(s))
    not_seen = stats.known_not_seen() if stats.known_entries() else []
    if not_seen:
        out.append("== statemodels: known but not seen")
        out.extend(f"{k.source or '-'}: {k.signature}" for k in not_seen)
    for old, new in sorted(stats.legacy_hints().items()):
        out.append(
            f"statemodels: known signature {old!r} is in the old position form; write {new!r}"
        )
    if stats.empty_runs:
        out.append("== statemodels: runs that ran no example (each failed its test)")
        out.extend(stats.empty_runs)
    return out


def _command_lines(s: stats.MachineStats) -> list[str]:
    """Generation statistics: per command kind, what its steps did."""
    lines = []
    for kind, c in sorted(s.commands.items(), key=lambda kv: -kv[1].ran):
        parts = [f"ok {c.ok / c.ran:.0%}", f"failed {c.failed / c.ran:.0%}"]
        if c.diverged or c.hung:
            parts.append(f"diverged {(c.diverged + c.hung) / c.ran:.0%}")
        parts.append(f"changed model {c.changed / c.ran:.0%}")
        lines.append(f"      {kind:<24} {c.ran:>6}  " + "  ".join(parts))
    return lines
