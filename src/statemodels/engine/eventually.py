"""Poll until a condition holds or a deadline passes: the only way statemodels waits.

"Eventually within N ms" properties poll with a deadline; a bare ``sleep`` either wastes time
(too long) or flakes (too short). ``eventually`` returns as soon as the check passes, and on
timeout reports the last reason it did not.

Example::

    pid = eventually(lambda: relay.worker_pid("eth0"), within=2.0, what="eth0 respawned")
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["EventuallyTimeout", "eventually"]

T = TypeVar("T")


class EventuallyTimeout(AssertionError):
    """The condition did not hold before the deadline. ``last`` is the last failure, if any."""

    def __init__(self, what: str, within: float, attempts: int, last: BaseException | None) -> None:
        self.what = what
        self.within = within
        self.attempts = attempts
        self.last = last
        reason = f": last failure: {last}" if last is not None else ": check kept returning false"
        super().__init__(f"{what} did not hold within {within:g}s ({attempts} attempts){reason}")


def eventually(
    check: Callable[[], T], *, within: float, every: float = 0.005, what: str = "condition"
) -> T:
    """Call ``check`` until it returns a truthy value without raising ``AssertionError``.

    Args:
        check: returns the value to hand back (truthy = done); may raise ``AssertionError`` to say
            "not yet" with a reason. Other exceptions propagate at once: they are bugs, not waits.
        within: seconds until giving up. The check always runs at least once.
        every: seconds between attempts (the last attempt lands on the deadline, not after it).
        what: names the condition in the timeout message.

    Returns:
        The first truthy value ``check`` returned.

    Raises:
        EventuallyTimeout: the deadline passed; carries the last ``AssertionError``.
    """
    if within < 0 or every <= 0:
        raise ValueError(f"eventually(within={within!r}, every={every!r}): need within>=0, every>0")
    deadline = time.monotonic() + within
    attempts = 0
    last: BaseException | None = None
    while True:
        attempts += 1
        try:
            value = check()
        except AssertionError as exc:
            last = exc
        else:
            if value:
                return value
            last = None
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise EventuallyTimeout(what, within, attempts, last)
        # Event-free wait: polling is the point, and the interval is bounded by the deadline.
        time.sleep(min(every, remaining))
