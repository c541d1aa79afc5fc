"""One run in several processes: what a pytest-xdist worker hands to the controller.

With ``pytest -n 2`` the tests run in worker processes, and the controller, which prints the
terminal summary and writes the report, runs none of them. Everything statemodels shows at the
end is gathered where the machines ran: the machines' statistics, the divergences and traces,
the leaked-process lines, the number of sweeps left out. Each worker puts its share in xdist's
``workeroutput`` as it finishes (:func:`hand_over`). The controller reads it in
``pytest_testnodedown`` (:func:`received`) and adds it up, so the summary is the one a single
process would print.

Nothing here imports xdist. Without it, ``workeroutput`` never exists and the hook that reads
it is never called: the plugins declare it ``optionalhook``.
"""

from __future__ import annotations

from typing import Any

import pytest

__all__ = ["hand_over", "is_worker", "received"]

_KEY = "statemodels"


def is_worker(config: pytest.Config) -> bool:
    """True inside an xdist worker process (xdist gives it ``workerinput``)."""
    return hasattr(config, "workerinput")


def hand_over(config: pytest.Config, part: str, data: Any) -> None:
    """Send ``data`` to the controller under ``part``; a no-op outside a worker.

    ``data`` travels through execnet: plain dicts, lists, strings and numbers only (no Counter,
    no attrs instance).
    """
    out = getattr(config, "workeroutput", None)
    if out is not None:
        out.setdefault(_KEY, {})[part] = data


def received(node: Any, part: str) -> Any:
    """What the worker behind ``node`` handed over as ``part`` (None if nothing, or it crashed)."""
    return getattr(node, "workeroutput", {}).get(_KEY, {}).get(part)
