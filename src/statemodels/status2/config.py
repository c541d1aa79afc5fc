"""The timings and limits of a status2, in milliseconds: one value class for the bundled service
(it becomes the process's ``STATUS_*`` environment) and for a user's own (what the model expects).
"""

from __future__ import annotations

import attrs

__all__ = ["ServiceConfig"]


def _positive(_inst: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not isinstance(value, int) or value <= 0:
        raise ValueError(f"{attribute.name} must be a positive number of ms (got {value!r})")


@attrs.frozen
class ServiceConfig:
    """Timings (milliseconds) and limits of a status2; the defaults suit the machine.

    Why these: a request timeout of 400 ms is long enough that a loaded machine does not fake a
    stall (at 100 ms a PING answered late dropped idle subscriptions of a correct service), and
    with a 500 ms base a ``RedisPause`` of 1300 ms is detected (after <= 2 request timeouts)
    yet costs each socket at most two errors, below ``max_retries=3``.

    The same values describe a user's own status2 (its ``STATUS_*`` settings), so the model
    knows when a silent client must be cut and how many redials an outage costs.
    """

    ping_ms: int = attrs.field(default=100, validator=_positive)
    pong_timeout_ms: int = attrs.field(default=600, validator=_positive)
    write_timeout_ms: int = attrs.field(default=1000, validator=_positive)
    request_timeout_ms: int = attrs.field(default=400, validator=_positive)
    retry_base_ms: int = attrs.field(default=500, validator=_positive)
    retry_max_ms: int = attrs.field(default=1000, validator=_positive)
    max_retries: int = 3
    max_message: int = attrs.field(default=4096, validator=_positive)
    allowed_origins: tuple[str, ...] = ("allowed.example", "*.trusted.example")
    metrics: bool = True

    def env(self) -> dict[str, str]:
        """The ``STATUS_*`` variables (Go duration syntax, as upstream reads them)."""
        return {
            "STATUS_PING_INTERVAL": f"{self.ping_ms}ms",
            "STATUS_PONG_TIMEOUT": f"{self.pong_timeout_ms}ms",
            "STATUS_WRITE_TIMEOUT": f"{self.write_timeout_ms}ms",
            "STATUS_REDIS_REQUEST_TIMEOUT": f"{self.request_timeout_ms}ms",
            "STATUS_REDIS_RETRY_BASE": f"{self.retry_base_ms}ms",
            "STATUS_REDIS_RETRY_MAX": f"{self.retry_max_ms}ms",
            "STATUS_REDIS_MAX_RETRIES": str(self.max_retries),
            "STATUS_MAX_MESSAGE_SIZE": str(self.max_message),
            "STATUS_ALLOWED_ORIGINS": ",".join(self.allowed_origins),
            "STATUS_METRICS_ENABLED": "true" if self.metrics else "false",
        }
