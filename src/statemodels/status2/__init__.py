"""status2: Redis pub/sub channels fanned out to WebSockets, against a pure model.

``system`` holds the bundled service (a real process) and its contract; ``model`` what a
correct status2 shows; ``driver`` real WebSocket clients and a real Redis publisher; ``machine``
the state machine. ``tests/stateful/test_status2.py`` runs it.
"""

from .commands import (
    ClientClose,
    ClientSend,
    Connect,
    Crowd,
    Heartbeat,
    Publish,
    RedisDrop,
    RedisOutage,
    RedisPause,
    Scrape,
    Shutdown,
    Wait,
)
from .config import ServiceConfig
from .driver import Status2Driver
from .machine import Status2Machine, bundled_machine, bundled_status2
from .model import Status2Model
from .system import MUTANTS, Status2Service

__all__ = [
    "MUTANTS",
    "ClientClose",
    "ClientSend",
    "Connect",
    "Crowd",
    "Heartbeat",
    "Publish",
    "RedisDrop",
    "RedisOutage",
    "RedisPause",
    "Scrape",
    "ServiceConfig",
    "Shutdown",
    "Status2Driver",
    "Status2Machine",
    "Status2Model",
    "Status2Service",
    "Wait",
    "bundled_machine",
    "bundled_status2",
]
