"""Validation of the bundled relay's ``AddRule`` bodies, and derived rule ids.

Part of the standalone relay scripts (stdlib only): the supervisor imports it as a sibling module
when run as ``python -I -S supervisor.py``. The model has its own, independent statement of the
same rules (:func:`statemodels.supervisor.model.validate_rule`); the properties tests hold the two
to agreement.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from typing import Any

__all__ = ["PROTOCOLS", "BadRequest", "derive_rule_id", "interface_name", "validate_rule"]

PROTOCOLS = ("udp", "tcp")
_IFACE = re.compile(r"[A-Za-z0-9_.-]{1,15}")
_RULE_ID = re.compile(r"[A-Za-z0-9_.:-]{0,64}")
_MULTICAST = ipaddress.IPv4Network("224.0.0.0/4")
_RULE_FIELDS = {
    "rule_id",
    "name",
    "input_interface",
    "input_group",
    "input_port",
    "input_protocol",
    "outputs",
}


def derive_rule_id(interface: str, group: str, port: int, protocol: str | None) -> str:
    """The id of a rule added with an empty ``rule_id``: a hash of what the rule listens on."""
    key = f"{interface}|{group}|{port}" + ("" if protocol is None else f"|{protocol}")
    return "r-" + hashlib.sha256(key.encode()).hexdigest()[:12]


class BadRequest(Exception):
    """A request we answer with ``{"Error": ...}``."""


def _port(value: Any, what: str, allow_zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"{what} must be an integer (got {value!r})")
    if not (0 if allow_zero else 1) <= value <= 65535:
        raise BadRequest(f"{what} must be in 1..65535 (got {value!r})")
    return value


def interface_name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _IFACE.fullmatch(value):
        raise BadRequest(f"{what} must be an interface name (got {value!r})")
    return value


def _ipv4(value: Any, what: str) -> ipaddress.IPv4Address:
    try:
        return ipaddress.IPv4Address(value)
    except (ValueError, TypeError):
        raise BadRequest(f"{what} must be an IPv4 address (got {value!r})") from None


def validate_rule(body: Any, mutants: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Check an ``AddRule`` body; return the normalised rule (``rule_id`` derived if empty)."""
    if not isinstance(body, dict):
        raise BadRequest(f"AddRule takes an object (got {body!r})")
    unknown = set(body) - _RULE_FIELDS
    if unknown:
        raise BadRequest(f"unknown rule field(s) {sorted(unknown)}")
    for required in ("input_interface", "input_group", "input_port", "outputs"):
        if required not in body:
            raise BadRequest(f"rule is missing {required!r}")
    iface = interface_name(body["input_interface"], "input_interface")
    group = _ipv4(body["input_group"], "input_group")
    if group not in _MULTICAST:
        raise BadRequest(f"input_group must be in 224.0.0.0/4 (got {str(group)!r})")
    port = _port(body["input_port"], "input_port", allow_zero="port-zero-accepted" in mutants)
    protocol = body.get("input_protocol", "udp")
    if protocol not in PROTOCOLS:
        raise BadRequest(f"input_protocol must be one of {PROTOCOLS} (got {protocol!r})")
    name = body.get("name", "")
    if not isinstance(name, str) or len(name) > 64:
        raise BadRequest(f"name must be a string of at most 64 characters (got {name!r})")
    outputs = body["outputs"]
    if not isinstance(outputs, list) or len(outputs) > 16:
        raise BadRequest("outputs must be a list of at most 16 destinations")
    clean_outputs = []
    for out in outputs:
        if not isinstance(out, dict) or set(out) != {"group", "port", "interface"}:
            raise BadRequest(f"an output is {{group, port, interface}} (got {out!r})")
        out_iface = interface_name(out["interface"], "output interface")
        if out_iface == iface:
            raise BadRequest(f"output interface {out_iface!r} equals the input interface")
        out_group = str(_ipv4(out["group"], "output group"))
        clean_outputs.append(
            {"group": out_group, "port": _port(out["port"], "output port"), "interface": out_iface}
        )
    rule_id = body.get("rule_id", "")
    if not isinstance(rule_id, str) or not _RULE_ID.fullmatch(rule_id):
        raise BadRequest(f"rule_id must match {_RULE_ID.pattern} (got {rule_id!r})")
    if not rule_id:
        proto = None if "id-without-protocol" in mutants else protocol
        rule_id = derive_rule_id(iface, str(group), port, proto)
    return {
        "rule_id": rule_id,
        "name": name,
        "input_interface": iface,
        "input_group": str(group),
        "input_port": port,
        "input_protocol": protocol,
        "outputs": clean_outputs,
    }
