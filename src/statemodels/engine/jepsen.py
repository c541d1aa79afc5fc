"""Jepsen single-register logs as :class:`~statemodels.engine.history.History` objects.

The checker is validated against an external oracle: real histories recorded by Jepsen's etcd
test, with the verdicts other checkers agree on. This module reads that log format and gives the
single-register specification (read / write / cas) they are judged by::

    history = read_log("etcd_000.log")
    check(history, SingleRegister()).verdict      # "not-linearizable"

Log lines look like ``INFO  jepsen.util - 3\\t:invoke\\t:cas\\t[1 4]`` (tabs or spaces). Process
``P`` invokes (``:invoke``) then completes (``:ok``, ``:fail``, ``:info``) one operation at a time:

- ``:ok :read N`` / ``:ok :read nil`` -- the read returned N (nil: no value yet);
- ``:ok :write N``;
- ``:ok :cas [A B]`` swapped; ``:fail :cas [A B]`` answered "not swapped" -- a *known* result
  (the value was not A), so it is an ``ok`` operation returning ``False`` here, not a Jepsen
  "did not happen";
- ``:info ...`` / ``:fail :read :timed-out`` / no completion at all: effect unknown. A read of
  unknown result has no effect on anything and is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs

from ..errors import ConfigurationError
from .history import History, Operation
from .linearizability import UNKNOWN

__all__ = ["Cas", "Read", "SingleRegister", "Write", "parse_log", "read_log"]


@attrs.frozen
class Read:
    """Read the register; the result is its value (``None``: never written)."""


@attrs.frozen
class Write:
    """Write ``value``."""

    value: int


@attrs.frozen
class Cas:
    """Set the register to ``new`` if it holds ``expected``; the result says whether it did."""

    expected: int
    new: int


@attrs.frozen
class SingleRegister:
    """The sequential specification of one register: state is its value (``None`` at first)."""

    def init(self) -> int | None:
        return None

    def step(self, state: int | None, command: Any, result: Any) -> tuple[bool, int | None]:
        if isinstance(command, Read):
            return result is UNKNOWN or result == state, state
        if isinstance(command, Write):
            return True, command.value
        if isinstance(command, Cas):
            swapped = state == command.expected
            ok = result is UNKNOWN or result == swapped
            return ok, command.new if swapped else state
        raise TypeError(f"SingleRegister cannot step {command!r}")


_LINE = re.compile(
    r"^INFO\s+jepsen\.util\s+-\s+(?P<process>\d+)\s+:(?P<type>invoke|ok|fail|info)"
    r"\s+:(?P<f>read|write|cas)\s+(?P<value>.+?)\s*$"
)
_PAIR = re.compile(r"^\[(\d+)\s+(\d+)\]$")


def read_log(path: str | Path) -> History:
    """Parse one Jepsen register log file (see the module docstring)."""
    target = Path(path)
    if not target.is_file():
        raise ConfigurationError(f"no Jepsen log at {str(target)!r}: pass the path of a .log file")
    return parse_log(target.read_text(encoding="utf-8").splitlines())


def parse_log(lines: Iterable[str]) -> History:
    """Turn log lines into a history; the line number is the (logical) time."""
    open_ops: dict[int, tuple[int, Any]] = {}
    ops: list[Operation] = []
    for number, line in enumerate(lines):
        m = _LINE.match(line)
        if m is None:
            continue  # lines of other shapes carry no operation
        process, kind, value = int(m["process"]), m["type"], m["value"]
        if kind == "invoke":
            open_ops[process] = (number, _command(m["f"], value))
            continue
        if process not in open_ops:
            continue  # a completion without its invocation (log started mid-operation)
        invoked, command = open_ops.pop(process)
        if kind == "info" or value == ":timed-out":
            if not isinstance(command, Read):
                ops.append(Operation(len(ops), process, command, invoked, None, "info"))
            continue
        if isinstance(command, Read):
            result: Any = None if value == "nil" else int(value)
        elif isinstance(command, Write):
            result = None
        else:
            result = kind == "ok"
        ops.append(Operation(len(ops), process, command, invoked, number, "ok", result))
    for process, (invoked, command) in open_ops.items():
        if not isinstance(command, Read):
            ops.append(Operation(len(ops), process, command, invoked, None, "info"))
    return History.from_operations(ops)


def _command(f: str, value: str) -> Any:
    if f == "read":
        return Read()
    if f == "write":
        return Write(int(value))
    pair = _PAIR.match(value)
    if pair is None:
        raise ConfigurationError(f"cas value {value!r} is not '[FROM TO]'")
    return Cas(int(pair[1]), int(pair[2]))
