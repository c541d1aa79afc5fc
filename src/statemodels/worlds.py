"""World factories: how to build a fresh driver + model again for a machine, by its name.

A trace names its machine (``RegisterMachine``) and describes the world it ran on -- which
system, which seeded bugs, where (without secrets). Replaying it needs the inverse: from that
description, a *fresh* world of the same kind. Each domain registers one :class:`WorldKind`::

    register_world(WorldKind(
        machine="RegisterMachine",
        fixture="statemodels_redis",          # what a generated pytest file asks pytest for
        describe=_describe_register,          # machine -> JSON-ready dict, no passwords
        open=_open_register,                  # (description, target, server) -> with-block
    ))

``open`` yields a machine factory (called once: a replay is one example). With ``server`` (a
running fixture's server, in a generated test) it uses that; with ``target`` (``--target``, a
URL or DSN) it attaches to the user's system; else it starts a bundled one and stops it after.

``replay_step`` says how one journaled command is carried out again; the default is
``machine.execute(cmd)``. A machine whose rules do more around a command than ``execute`` (the
relay settles a respawn after AddRule and KillWorker) gives its own.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import attrs

from .errors import ConfigurationError

__all__ = ["WorldKind", "get_world", "redact", "register_world", "worlds"]

Opener = Callable[[dict[str, Any], str | None, Any], contextlib.AbstractContextManager[Any]]


@attrs.frozen
class WorldKind:
    """How to describe and rebuild the world of one machine."""

    machine: str
    describe: Callable[[Any], dict[str, Any]]
    open: Opener
    fixture: str | None = None
    replay_step: Callable[[Any, Any], None] | None = None
    #: Every command type the machine can draw (the report shows the ones that never ran).
    kinds: tuple[str, ...] = ()


_worlds: dict[str, WorldKind] = {}


def register_world(kind: WorldKind) -> None:
    """Make ``kind.machine``'s traces replayable (a user's domain calls this at import)."""
    _worlds[kind.machine] = kind


def worlds() -> dict[str, WorldKind]:
    _load_bundled()
    return _worlds


def get_world(machine: str) -> WorldKind:
    """The world kind of ``machine``; an unknown one is a one-line error naming the fix."""
    _load_bundled()
    try:
        return _worlds[machine]
    except KeyError:
        raise ConfigurationError(
            f"no world factory for {machine!r} (known: {', '.join(sorted(_worlds))}): register "
            "one with statemodels.worlds.register_world(WorldKind(...)) before replaying"
        ) from None


def describe(machine: Any) -> dict[str, Any]:
    """What a trace records of ``machine``'s world; machines without a factory say so."""
    _load_bundled()
    kind = _worlds.get(getattr(machine, "name", type(machine).__name__))
    if kind is None:
        return {"system": "unregistered", "mutants": []}
    try:
        return kind.describe(machine)
    except Exception as exc:  # a description is a courtesy: never lose the trace over it
        return {"system": "undescribed", "error": type(exc).__name__, "mutants": []}


def redact(address: str) -> str:
    """``address`` without its password: URLs (``scheme://user:pw@host``) and libpq DSNs."""
    if "://" in address:
        parts = urlsplit(address)
        if parts.password is not None:
            host = parts.hostname or ""
            if parts.port:
                host = f"{host}:{parts.port}"
            user = f"{parts.username}:***@" if parts.username else ":***@"
            parts = parts._replace(netloc=user + host)
        return urlunsplit(parts)
    words = ["password=***" if w.lower().startswith("password=") else w for w in address.split()]
    return " ".join(words)


# -- the bundled domains ----------------------------------------------------------------------


def _describe_register(machine: Any) -> dict[str, Any]:
    driver = machine.driver
    kwargs = driver._client.connection_pool.connection_kwargs
    address = f"redis://{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"
    address += f"/{kwargs.get('db', 0)}"
    return {
        "system": "register store on Redis (bundled statemodels.register.system)",
        "target": address,
        "attached": bool(os.environ.get("STATEMODELS_REDIS_URL")),
        "mutants": sorted(driver.store.mutants),
    }


@contextlib.contextmanager
def _open_register(world: dict[str, Any], target: str | None, server: Any) -> Iterator[Any]:
    from .infra.redis import RedisServer
    from .register import RegisterDriver, RegisterMachine

    mutants = frozenset(world.get("mutants") or ())
    own = server is None
    if own:
        server = RedisServer.attach(target) if target else RedisServer.from_env()
    try:
        yield lambda: RegisterMachine(RegisterDriver(server, mutants))
    finally:
        if own:
            server.stop()


def _describe_pggit(machine: Any) -> dict[str, Any]:
    from .infra.postgres import mask_dsn

    return {
        "system": "pgGit-compatible database (bundled statemodels.pggit.system)",
        "target": mask_dsn(machine.driver.dsn),
        "attached": bool(os.environ.get("STATEMODELS_PG_DSN")),
        # Read by the driver from the install's schema comment (bundled system only).
        "mutants": sorted(getattr(machine.driver, "mutants", ()) or ()),
    }


@contextlib.contextmanager
def _open_pggit(world: dict[str, Any], target: str | None, server: Any) -> Iterator[Any]:
    from .infra import PostgresServer, TemplateJanitor
    from .pggit import install, machine_factory

    mutants = frozenset(world.get("mutants") or ())
    own = server is None
    if own:
        server = PostgresServer.attach(target) if target else PostgresServer.from_env()
    try:
        with TemplateJanitor(
            server, name="pggit_replay", install=lambda conn: install(conn, mutants)
        ) as janitor:
            yield machine_factory(janitor)
    finally:
        if own:
            server.stop()


def _describe_relay(machine: Any) -> dict[str, Any]:
    from . import codec

    relay = getattr(machine.driver, "faults", None)
    config = getattr(relay, "config", None)
    return {
        "system": "bundled multicast relay (statemodels.supervisor.system)",
        "config": codec.encode(config) if config is not None else None,
        "mutants": sorted(config.mutants) if config is not None else [],
    }


@contextlib.contextmanager
def _open_relay(world: dict[str, Any], target: str | None, server: Any) -> Iterator[Any]:
    from . import codec
    from .supervisor import RelayConfig, bundled_relay_machine

    if target:
        raise ConfigurationError(
            "a relay trace replays on a fresh bundled relay only (it kills and restarts its "
            "workers): drop --target"
        )
    config = codec.decode(world["config"]) if world.get("config") else RelayConfig()
    if world.get("mutants") is not None:
        config = attrs.evolve(config, mutants=frozenset(world["mutants"]))
    yield lambda: bundled_relay_machine(config)


def _relay_step(machine: Any, cmd: Any) -> None:
    """The relay's rules settle a respawn after AddRule and KillWorker (the checks that catch
    restart bugs); the journal keeps only the commands, so a replay settles after each one."""
    from .supervisor.commands import AddRule, KillWorker

    match cmd:
        case AddRule(rule=rule_):
            machine._add(rule_, settle=True)
        case KillWorker(interface=iface):
            out = machine.execute(cmd)
            if not out.skipped and iface in machine.state.pending():
                machine._settle(iface)
        case _:
            machine.execute(cmd)


_loaded = False


def _load_bundled() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    from . import codec

    codec.register_module("statemodels.supervisor.system.launch")
    register_kinds = ("Put", "Get", "Delete", "Incr", "Cas")
    pggit_kinds = (
        *("CreateTable", "AlterTable", "RenameTable", "DropTable", "Commit", "CreateBranch"),
        *("DeleteBranch", "Txn", "ConcurrentCommits", "GenerateIds"),
    )
    relay_kinds = (
        *("AddRule", "RemoveRule", "ListRules", "ListWorkers", "WorkerRules", "Ping"),
        *("SendRaw", "KillWorker", "StopWorker", "ContWorker", "FailSpawns"),
    )
    for kind in (
        WorldKind(
            "RegisterMachine",
            _describe_register,
            _open_register,
            "statemodels_redis",
            kinds=register_kinds,
        ),
        WorldKind(
            "PggitMachine", _describe_pggit, _open_pggit, "statemodels_postgres", kinds=pggit_kinds
        ),
        WorldKind("RelayMachine", _describe_relay, _open_relay, None, _relay_step, relay_kinds),
    ):
        _worlds.setdefault(kind.machine, kind)
