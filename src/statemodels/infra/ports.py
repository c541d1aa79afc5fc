"""Free TCP ports for servers a test run starts itself.

Servers started by statemodels never use a machine's default port (5432, 6379): those belong to
someone else. They ask the kernel for a free one instead.

Example::

    port = free_port()
    server = RedisServer.start(port=port)
"""

from __future__ import annotations

import socket

__all__ = ["free_port"]


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on ``host`` that was free a moment ago.

    Binds port 0 (the kernel picks an unused port), reads it and closes the socket. There is a
    window in which another process could take the port; servers started on it therefore fail
    loudly (their start-up raises :class:`~statemodels.errors.ServerError`) rather than silently
    sharing it.

    Args:
        host: the address to bind; the servers statemodels starts listen on 127.0.0.1.

    Returns:
        A port number in the kernel's ephemeral range.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
    return port
