"""Every statemodels option, declared once, resolved in one place.

Each option is a ``--statemodels-<name>`` flag, a ``statemodels_<name>`` ini key and a
``STATEMODELS_<NAME>`` environment variable, resolved in the order

    argument > flag > environment > ini > default

and compared with ``is not None`` (an empty string or 0 given on purpose still wins). The help
text is written once, here, and shown by ``pytest --help`` and ``statemodels --help``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from .errors import ConfigurationError
from .masking import Secret

__all__ = ["OPTIONS", "Option", "resolve"]


def _minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigurationError(
            f"budget minutes must be a number (got {text!r}): e.g. --budget-minutes 30"
        ) from None
    # nan compares false with everything, so `value <= 0` alone lets it through; inf never ends.
    if not (math.isfinite(value) and value > 0):
        raise ConfigurationError(
            f"budget minutes must be a finite number > 0 (got {text!r}): e.g. --budget-minutes 30"
        )
    return value


def _secret(text: str) -> Secret:
    return Secret(text)


def _backoff(text: str) -> tuple[float, float, float]:
    """``initial,factor,cap`` in seconds, e.g. ``0.1,2,0.2``."""
    parts = text.split(",")
    try:
        initial, factor, cap = (float(p) for p in parts)
    except ValueError:
        raise ConfigurationError(
            f"relay backoff is initial,factor,cap in seconds (got {text!r}): e.g. 0.1,2,0.2"
        ) from None
    if not (initial > 0 and factor >= 1 and cap >= initial):
        raise ConfigurationError(
            f"relay backoff {text!r} needs initial > 0, factor >= 1 and cap >= initial"
        )
    return initial, factor, cap


def _switch(text: str) -> bool:
    """on/off (also 1/0, true/false, yes/no)."""
    word = text.strip().lower()
    if word in ("on", "1", "true", "yes"):
        return True
    if word in ("off", "0", "false", "no", ""):
        return False
    raise ConfigurationError(f"expected on or off (got {text!r}): e.g. --sweeps on")


def _names(text: str) -> tuple[str, ...]:
    """A comma-separated list of names, e.g. ``commit-errors-generic,main-deletable``."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


@attrs.frozen
class Option:
    """One option and its three spellings."""

    name: str
    help: str
    default: Any = None
    convert: Callable[[str], Any] = str
    #: A short flag kept for the commands the issues and README name (``--budget``).
    alias: str | None = None

    @property
    def flag(self) -> str:
        return "--statemodels-" + self.name.replace("_", "-")

    @property
    def ini(self) -> str:
        return "statemodels_" + self.name

    @property
    def env(self) -> str:
        return "STATEMODELS_" + self.name.upper()

    @property
    def dest(self) -> str:
        return "statemodels_" + self.name


OPTIONS: dict[str, Option] = {
    o.name: o
    for o in (
        Option(
            "budget",
            "example budget: smoke (quick look), ci (every push) or deep (time-boxed search)",
            default="smoke",
            alias="--budget",
        ),
        Option(
            "budget_minutes",
            "time box for the deep budget, in minutes (new seeds until it is spent)",
            convert=_minutes,
            alias="--budget-minutes",
        ),
        Option(
            "sweeps",
            "also run the tests marked sweep (every generated mutant, the long hunts): on/off; "
            "the weekly workflow turns them on, -m sweep runs only them",
            default=False,
            convert=_switch,
            alias="--sweeps",
        ),
        Option(
            "pg_dsn",
            "attach to this PostgreSQL server (needs CREATEDB) instead of starting one",
            convert=_secret,
        ),
        Option("redis_url", "attach to this Redis server instead of starting one", convert=_secret),
        Option(
            "pggit_dsn",
            "run the pggit machine on per-example clones of this pgGit database "
            "(role with CREATEDB that owns it; no other sessions on it)",
            convert=_secret,
        ),
        Option(
            "pggit_quirks",
            "comma-separated declared differences of your pgGit that the model adopts "
            "(statemodels quirks lists them), e.g. commit-errors-generic",
            default=(),
            convert=_names,
        ),
        Option(
            "relay_socket",
            "also run the relay machine against the relay behind this control socket; every "
            "example removes all its rules first",
        ),
        Option(
            "relay_backoff",
            "that relay's restart backoff as initial,factor,cap in seconds",
            default=(0.1, 2.0, 0.2),
            convert=_backoff,
        ),
        Option(
            "github_db",
            "owner/repo whose 'hypothesis-example-db' workflow artifact is read as a read-only "
            "example database (the weekly deep search's findings replay first)",
        ),
        Option(
            "known",
            "file of known divergence signatures (one per line): recorded, searched past",
        ),
        # -- the user's loop: traces, report, live progress (statemodels.session) --
        Option(
            "trace_dir",
            "where divergence traces go, as <dir>/<machine>/<hash>.json ('off': none); "
            "replay one with: statemodels replay TRACE",
            default=".statemodels/traces",
        ),
        Option(
            "report",
            "write an HTML report of the run to this path (and PATH.json beside it)",
        ),
        Option(
            "progress",
            "live progress: auto (an updating line on a terminal, a plain line every "
            "progress_every seconds otherwise), tty, plain or off",
            default="auto",
        ),
        Option(
            "progress_every",
            "seconds between plain progress lines (non-terminal output)",
            default=30.0,
            convert=float,
        ),
    )
}


def resolve(
    name: str,
    *,
    argument: Any = None,
    flag: Any = None,
    ini: Any = None,
    environ: Mapping[str, str] | None = None,
) -> Any:
    """The value of option ``name``: argument > flag > environment > ini > default.

    ``flag`` and ``ini`` are what pytest parsed (``None`` when not given); strings from the
    environment and ini go through the option's converter.
    """
    option = OPTIONS[name]
    env = os.environ if environ is None else environ
    if argument is not None:
        return argument
    if flag is not None:
        return flag
    from_env = env.get(option.env)
    if from_env is not None:
        return option.convert(from_env)
    if ini is not None and ini != "":
        return option.convert(str(ini))
    return option.default
