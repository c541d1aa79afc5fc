"""Driving a user's own status2: where it is, the Redis it reads, its timings, what may be done.

Read from the environment (until ``options.py`` carries them as ``--statemodels-status2-*``):

========================================  =================================================
``STATEMODELS_STATUS2_URL``               ``http://host:port`` of the service (required)
``STATEMODELS_STATUS2_REDIS_URL``         the Redis it subscribes on (required with the URL)
``STATEMODELS_STATUS2_CONFIG``            its settings, e.g. ``ping=5000,pong=75000,``
                                          ``request=1000,base=1000,max=30000,retries=5,``
                                          ``max_message=65536,origins=a.example|*.b.example,``
                                          ``metrics=1`` (ms; omitted keys: upstream defaults)
``STATEMODELS_STATUS2_REDIS_CONTROL``     ``1``: the machine may ``CLIENT KILL`` the pub/sub
                                          connections and ``CLIENT PAUSE`` that Redis
========================================  =================================================

Every problem is a one-line :class:`~statemodels.errors.ConfigurationError` naming the fix.
"""

from __future__ import annotations

import http.client
import os
from urllib.parse import urlsplit

import attrs
import redis
from websockets.sync.client import connect

from ..errors import ConfigurationError
from ..infra.processes import one_line, poll_until
from ..infra.redis import _mask_url
from ..strategies.status2 import CHANNELS, EDGE_CHANNEL
from .config import ServiceConfig
from .driver import Status2Driver
from .machine import Status2Machine

__all__ = ["UPSTREAM_DEFAULTS", "UserTarget", "parse_config"]

#: Upstream status2's defaults (``internal/config``), origins unset, metrics off.
UPSTREAM_DEFAULTS = ServiceConfig(
    ping_ms=5000,
    pong_timeout_ms=75000,
    write_timeout_ms=2000,
    request_timeout_ms=1000,
    retry_base_ms=1000,
    retry_max_ms=30000,
    max_retries=5,
    max_message=65536,
    allowed_origins=(),
    metrics=False,
)
_KEYS = {
    "ping": "ping_ms",
    "pong": "pong_timeout_ms",
    "write": "write_timeout_ms",
    "request": "request_timeout_ms",
    "base": "retry_base_ms",
    "max": "retry_max_ms",
    "retries": "max_retries",
    "max_message": "max_message",
}
_PROBE = "statemodels-probe:status2"


def parse_config(text: str) -> ServiceConfig:
    """``key=value,...`` over :data:`UPSTREAM_DEFAULTS` (see the module table)."""
    changes: dict[str, object] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        key = key.strip()
        try:
            if not sep:
                raise ValueError("no '='")
            if key == "origins":
                changes["allowed_origins"] = tuple(o for o in value.split("|") if o)
            elif key == "metrics":
                changes["metrics"] = value.strip().lower() in ("1", "true", "yes")
            elif key in _KEYS:
                changes[_KEYS[key]] = int(value)
            else:
                raise ValueError(f"unknown key {key!r}")
            attrs.evolve(UPSTREAM_DEFAULTS, **changes)  # type: ignore[arg-type]  # validates now
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(
                f"STATEMODELS_STATUS2_CONFIG part {part!r}: {one_line(exc)}; use keys "
                f"{', '.join([*_KEYS, 'origins', 'metrics'])} (ms), e.g. 'ping=5000,pong=75000'"
            ) from None
    return attrs.evolve(UPSTREAM_DEFAULTS, **changes)  # type: ignore[arg-type]


@attrs.frozen
class UserTarget:
    """A user's status2, validated: reachable, answering like status2, on the Redis given."""

    url: str
    redis_url: str
    config: ServiceConfig
    redis_control: bool

    @classmethod
    def from_env(cls) -> UserTarget | None:
        """The target the environment names, validated; None when no URL is set."""
        url = os.environ.get("STATEMODELS_STATUS2_URL", "").strip()
        if not url:
            return None
        redis_url = os.environ.get("STATEMODELS_STATUS2_REDIS_URL", "").strip()
        if not redis_url:
            raise ConfigurationError(
                "STATEMODELS_STATUS2_URL is set but STATEMODELS_STATUS2_REDIS_URL is not: set it "
                "to the Redis the service subscribes on (e.g. redis://host:6379/2)"
            )
        config = parse_config(os.environ.get("STATEMODELS_STATUS2_CONFIG", ""))
        control = os.environ.get("STATEMODELS_STATUS2_REDIS_CONTROL", "") in ("1", "true", "yes")
        target = cls(url.rstrip("/"), redis_url, config, control)
        target.validate()
        return target

    def validate(self) -> None:
        """One-line errors for an unreachable URL, a route that is not status2, a wrong Redis."""
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(
                f"STATEMODELS_STATUS2_URL {self.url!r} is not an http://host:port URL"
            )
        try:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
            try:
                conn.request("GET", "/health")
                resp = conn.getresponse()
                status, body = resp.status, resp.read(64).decode(errors="replace")
            finally:
                conn.close()
        except (OSError, http.client.HTTPException) as exc:
            raise ConfigurationError(
                f"cannot reach status2 at {self.url!r}: {one_line(exc)}; "
                "check STATEMODELS_STATUS2_URL (and that the service runs)"
            ) from None
        if (status, body.strip()) != (200, "OK"):
            raise ConfigurationError(
                f"{self.url!r} is not a status2: GET /health answered {status} {body.strip()!r} "
                "(status2 answers 200 'OK'); point STATEMODELS_STATUS2_URL at the service itself"
            )
        client = redis.Redis.from_url(self.redis_url, socket_timeout=5, socket_connect_timeout=5)
        masked = _mask_url(self.redis_url)
        try:
            client.ping()
            ws_url = f"{'wss' if parts.scheme == 'https' else 'ws'}://{parts.netloc}/{_PROBE}"
            with connect(ws_url, open_timeout=5, proxy=None):
                seen = poll_until(
                    lambda: client.pubsub_numsub(_PROBE)[0][1] > 0, timeout=5.0, interval=0.02
                )
        except redis.RedisError as exc:
            raise ConfigurationError(
                f"cannot use STATEMODELS_STATUS2_REDIS_URL {masked!r}: {one_line(exc)}"
            ) from None
        except (OSError, TimeoutError, Exception) as exc:
            raise ConfigurationError(
                f"status2 at {self.url!r} refused a WebSocket on /{_PROBE}: {one_line(exc)}"
            ) from None
        finally:
            client.close()
        if not seen:
            raise ConfigurationError(
                f"status2 at {self.url!r} accepted a socket but no subscription appeared on "
                f"{masked!r}: STATEMODELS_STATUS2_REDIS_URL must be the Redis the service reads"
            )

    def machine(self) -> Status2Machine:
        """A machine on this target (one fresh driver per example). Nothing is stopped or
        signalled; Redis faults only with ``STATEMODELS_STATUS2_REDIS_CONTROL=1``."""
        driver = Status2Driver(
            self.url, self.redis_url, self.config, channels=(*CHANNELS, EDGE_CHANNEL)
        )
        return Status2Machine(
            driver,
            drops=self.redis_control,
            pause=self.redis_control,
            outage=False,
            shutdown=False,
        )
