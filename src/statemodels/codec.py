"""Commands as data: attrs commands to JSON and back, through a registry of command types.

A trace stores the commands of a divergence so that they can be run again after the strategies
or the rules that drew them have changed (Hypothesis's example database cannot: it stores the
*choices* the strategies made, which mean something else after an edit). So a command is stored
as what it is -- its type and its fields -- never as a pickle (a pickle runs code on load, and
breaks on a renamed module as surely as on a moved strategy)::

    >>> from statemodels.register.commands import Cas
    >>> encode(Cas("a", None, 2))
    {'$type': 'statemodels.register.commands.Cas', 'key': 'a', 'expected': None, 'new': 2}
    >>> decode(encode(Cas("a", None, 2)))
    Cas(key='a', expected=None, new=2)

The format, for every value a command can hold:

- ``None``, ``bool``, ``int``, ``float``, ``str``: themselves; a ``list``: a JSON list.
- an attrs instance: ``{"$type": "module.Class", <field>: <value>, ...}`` (nested ones too).
- ``tuple`` / ``frozenset`` / ``set``: ``{"$tuple": [...]}`` / ``{"$frozenset": [...]}`` / ...
- an enum member: ``{"$enum": "module.Class", "name": "MEMBER"}``; ``bytes``: ``{"$bytes": hex}``.
- a ``dict``: itself when every key is a ``str`` not starting with ``$``, else
  ``{"$dict": [[key, value], ...]}``.

Decoding builds a class only if it is **registered**: every class this process encoded is (it
was a real command), the bundled domains' command modules are, and a user's domain registers its
own with :func:`register` (or :func:`register_module`). A trace naming anything else is refused
with a one-line error -- a trace file never makes this process import or build what it names.
"""

from __future__ import annotations

import enum
import importlib
from collections.abc import Iterable
from typing import Any

import attrs

from .errors import ConfigurationError

__all__ = ["TraceFormatError", "decode", "encode", "register", "register_module", "type_tag"]

#: Modules whose attrs classes and enums are command types; imported only when a trace needs one.
_TRUSTED_MODULES = {
    "statemodels.register.commands",
    "statemodels.pggit.commands",
    "statemodels.supervisor.commands",
    "statemodels.supervisor.system.rules",
}

_registry: dict[str, type] = {}


class TraceFormatError(ConfigurationError):
    """A trace that cannot be read back (unknown type, wrong shape)."""


def type_tag(cls: type) -> str:
    """The name a type is stored under: ``module.QualName``."""
    return f"{cls.__module__}.{cls.__qualname__}"


def register(*classes: type) -> None:
    """Make attrs classes (and enums) decodable by their :func:`type_tag`."""
    for cls in classes:
        if not (attrs.has(cls) or issubclass(cls, enum.Enum)):
            raise ConfigurationError(
                f"{cls.__qualname__} is neither an attrs class nor an enum: commands must be "
                "attrs classes (@attrs.frozen) to be stored as data"
            )
        _registry[type_tag(cls)] = cls


def register_module(name: str) -> None:
    """Trust every attrs class and enum of module ``name`` (imported when a trace needs it)."""
    _TRUSTED_MODULES.add(name)


def encode(value: Any) -> Any:
    """``value`` as JSON-ready data (see the module docstring for the format)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, enum.Enum):
        _registry.setdefault(type_tag(type(value)), type(value))
        return {"$enum": type_tag(type(value)), "name": value.name}
    if attrs.has(type(value)):
        cls = type(value)
        _registry.setdefault(type_tag(cls), cls)
        out: dict[str, Any] = {"$type": type_tag(cls)}
        for field in attrs.fields(cls):
            out[field.name] = encode(getattr(value, field.name))
        return out
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, tuple):
        return {"$tuple": [encode(v) for v in value]}
    if isinstance(value, frozenset | set):
        tag = "$frozenset" if isinstance(value, frozenset) else "$set"
        items = [encode(v) for v in value]
        return {tag: sorted(items, key=repr)}  # sorted: a trace's text is stable
    if isinstance(value, bytes):
        return {"$bytes": value.hex()}
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("$") for k in value):
            return {k: encode(v) for k, v in value.items()}
        return {"$dict": [[encode(k), encode(v)] for k, v in value.items()]}
    raise TraceFormatError(
        f"cannot store a {type(value).__qualname__} in a trace: command fields must be attrs "
        "classes, enums or plain data (str, int, float, bool, None, list, tuple, set, dict, bytes)"
    )


def decode(data: Any) -> Any:
    """The value :func:`encode` stored."""
    if data is None or isinstance(data, bool | int | float | str):
        return data
    if isinstance(data, list):
        return [decode(v) for v in data]
    if not isinstance(data, dict):
        raise TraceFormatError(f"unexpected {type(data).__qualname__} in a trace")
    if "$type" in data:
        cls = _lookup(data["$type"])
        fields = {k: decode(v) for k, v in data.items() if k != "$type"}
        known = {f.name for f in attrs.fields(cls)}
        unknown = sorted(fields.keys() - known)
        if unknown:
            raise TraceFormatError(
                f"the trace gives {data['$type']} fields it no longer has ({', '.join(unknown)}): "
                "the command class changed since the trace was written"
            )
        # attrs strips a leading underscore from private attributes' init argument (the alias).
        args = {f.alias: fields[f.name] for f in attrs.fields(cls) if f.init and f.name in fields}
        try:
            return cls(**args)
        except (TypeError, ValueError) as exc:
            raise TraceFormatError(
                f"cannot rebuild {data['$type']} from the trace ({exc}): the command class "
                "changed since the trace was written"
            ) from None
    if "$enum" in data:
        enum_cls: Any = _lookup(data["$enum"])
        return enum_cls[data["name"]]
    if "$tuple" in data:
        return tuple(decode(v) for v in data["$tuple"])
    if "$frozenset" in data:
        return frozenset(decode(v) for v in data["$frozenset"])
    if "$set" in data:
        return {decode(v) for v in data["$set"]}
    if "$bytes" in data:
        return bytes.fromhex(data["$bytes"])
    if "$dict" in data:
        return {decode(k): decode(v) for k, v in data["$dict"]}
    return {k: decode(v) for k, v in data.items()}


def _lookup(tag: str) -> type:
    if tag in _registry:
        return _registry[tag]
    # A nested class's tag has a dotted qualname: find the longest trusted module prefix.
    for trusted in sorted(_TRUSTED_MODULES, key=len, reverse=True):
        if tag.startswith(trusted + "."):
            module, name = trusted, tag[len(trusted) + 1 :]
            break
    else:
        raise TraceFormatError(
            f"the trace names an unregistered command type {tag!r}: register it first "
            "(statemodels.codec.register(YourCommand) or register_module('your.commands'))"
        )
    obj: Any = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise TraceFormatError(
                f"the trace names {tag!r}, which {module} no longer defines: the command was "
                "renamed or removed since the trace was written"
            )
    register(obj)
    return _registry[tag]


def encode_all(values: Iterable[Any]) -> list[Any]:
    return [encode(v) for v in values]
