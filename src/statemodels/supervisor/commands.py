"""Commands of the supervisor machines, and the rule value classes they carry.

Commands are plain frozen data: they print as a readable repro and say nothing about how they
are carried out. Relay commands (``AddRule`` ... ``FailSpawns``) follow the multicast relay's
control protocol; supervisord commands (``StartProgram`` ...) its XML-RPC interface.

Example::

    AddRule(Rule("eth0", "239.1.2.3", 5000, (Output("239.9.9.9", 6000, "eth1"),)))
    KillWorker("eth0")                 # SIGKILL: an abnormal exit, restarted after the backoff
    KillWorker("eth0", signal="SIGTERM")  # a clean exit, restarted at once
"""

from __future__ import annotations

from typing import Any

import attrs

__all__ = [
    "Action",
    "AddRule",
    "ContWorker",
    "FailSpawns",
    "KillProgram",
    "KillWorker",
    "ListPrograms",
    "ListRules",
    "ListWorkers",
    "Output",
    "Ping",
    "RemoveRule",
    "Rule",
    "SendRaw",
    "Settle",
    "StartProgram",
    "StopProgram",
    "StopWorker",
    "WorkerRules",
]


@attrs.frozen
class Output:
    """Where a rule forwards to: a group, a port and an output interface."""

    group: str
    port: int
    interface: str

    def to_json(self) -> dict[str, Any]:
        return {"group": self.group, "port": self.port, "interface": self.interface}


@attrs.frozen
class Rule:
    """A forwarding rule. An empty ``rule_id`` asks the relay to derive one."""

    input_interface: str
    input_group: str
    input_port: int
    outputs: tuple[Output, ...] = ()
    input_protocol: str = "udp"
    name: str = ""
    rule_id: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "name": self.name,
            "input_interface": self.input_interface,
            "input_group": self.input_group,
            "input_port": self.input_port,
            "input_protocol": self.input_protocol,
            "outputs": [o.to_json() for o in self.outputs],
        }

    @classmethod
    def from_json(cls, data: Any) -> Rule:
        """Parse a rule as the relay reports it.

        Raises:
            ValueError: ``data`` is not a rule object.
        """
        try:
            outputs = [Output(o["group"], o["port"], o["interface"]) for o in data["outputs"]]
            return cls(
                input_interface=data["input_interface"],
                input_group=data["input_group"],
                input_port=data["input_port"],
                outputs=tuple(outputs),
                input_protocol=data.get("input_protocol", "udp"),
                name=data.get("name", ""),
                rule_id=data["rule_id"],
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a rule: {data!r} ({exc!r})") from None


# -- relay control protocol ---------------------------------------------------------------


@attrs.frozen
class AddRule:
    rule: Rule


@attrs.frozen
class RemoveRule:
    rule_id: str


@attrs.frozen
class ListRules:
    pass


@attrs.frozen
class ListWorkers:
    pass


@attrs.frozen
class Ping:
    pass


@attrs.frozen
class WorkerRules:
    """Ask the worker of ``interface`` itself for its rule set (not the supervisor's list)."""

    interface: str


def _clip_bytes(payload: bytes) -> str:
    return repr(payload) if len(payload) <= 40 else f"<{len(payload)} bytes {payload[:24]!r}…>"


@attrs.frozen
class SendRaw:
    """Send raw bytes as a control request: malformed JSON, unknown commands, oversized bodies."""

    kind: str
    payload: bytes = attrs.field(repr=_clip_bytes)


# -- process faults -----------------------------------------------------------------------


@attrs.frozen
class KillWorker:
    """Signal the running worker of ``interface``: SIGKILL (abnormal exit) or SIGTERM (clean)."""

    interface: str
    signal: str = "SIGKILL"


@attrs.frozen
class StopWorker:
    """SIGSTOP the worker: it stays alive but answers nothing until :class:`ContWorker`."""

    interface: str


@attrs.frozen
class ContWorker:
    interface: str


@attrs.frozen
class FailSpawns:
    """Make the next ``count`` worker spawns for ``interface`` crash at start-up."""

    interface: str
    count: int


# -- relay machine steps ------------------------------------------------------------------


@attrs.frozen
class Settle:
    """Wait for every pending (re)spawn to complete, and judge it. Sent to no one: the machine
    watches the relay until each pending worker is Running again."""


@attrs.frozen
class Action:
    """One step of the relay machine: a command, and -- for one that starts a (re)spawn (an
    ``AddRule`` for a new interface, a ``KillWorker``) -- whether to wait for it at once
    (``settle=True``) or let the next steps race with it."""

    command: Any
    settle: bool = False


# -- supervisord --------------------------------------------------------------------------


@attrs.frozen
class StartProgram:
    name: str


@attrs.frozen
class StopProgram:
    name: str


@attrs.frozen
class KillProgram:
    """SIGKILL the running process of program ``name`` (behind supervisord's back)."""

    name: str


@attrs.frozen
class ListPrograms:
    pass
