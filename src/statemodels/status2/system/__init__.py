"""The bundled status2: a real process fanning Redis pub/sub channels out to WebSockets.

**The contract** the model holds a status2 to (upstream: rogerlew/wepppy ``services/status2``):

- ``GET /health`` → 200 ``OK``; ``/metrics`` → Prometheus text when metrics are enabled, else
  404; ``/`` → 404. Every other path is the WebSocket route: one trailing ``/`` is dropped, the
  rest must match ``^[A-Za-z0-9_.;-]+:[A-Za-z0-9_.-]+$`` (else 400 ``invalid channel``), and the
  socket subscribes to exactly that Redis channel, one subscription per socket.
- Origins: ``STATUS_ALLOWED_ORIGINS`` is a list of host patterns with ``*`` wildcards; an Origin
  whose host matches none (and is not the request's own host) is refused with 403; a request
  without Origin is accepted (as upstream's WebSocket library does). Unset: every Origin is
  accepted, and the service says so (a warning in its log, ``status2_origin_check_disabled 1``).
- Server → client: ``{"type":"status","data":<payload>}``, ``{"type":"ping"}`` every ping
  interval, ``{"type":"hangup"}`` whenever the service ends a socket, then close 1000.
- Client → server: ``{"type":"pong"}`` / ``{"type":"init"}`` (type case-insensitive) refresh
  last-seen; anything else is ignored; a WebSocket-level pong does *not* count; a frame over the
  max message size closes 1009. No pong within the pong timeout (checked after each ping) → hangup.
- Redis, per socket: subscribe, wait for the ack and receive, each bounded by the request
  timeout; any error: ``attempt += 1``, give up (hangup) at ``max_retries`` (0: never), else sleep
  ``base + U[0, min(base·2^(attempt-1), max) - base]`` and resubscribe. ``attempt`` resets on
  every ack and every message. ``status2_redis_reconnects_total`` counts subscribe attempts.

**Where the README's promise is held over upstream's code** (what a user running the machine
against their Go status2 will see reported):

1. *Payloads are forwarded unmodified.* Upstream re-encodes through Go's JSON: invalid UTF-8
   becomes U+FFFD. Here the payload's bytes are decoded with ``surrogateescape`` and sent with
   ``\\udcXX`` escapes, so a client can recover every byte; ``<>&`` arrive as they were sent.
2. *An idle channel is not a Redis error.* Upstream's receive uses the request timeout as a
   deadline for the next *message*, so on an idle channel it appears to drop and resubscribe every
   request timeout (+ backoff), and messages published in that gap are lost. What we found when
   modelling it (mutant ``idle-channel-error``): the subscription is absent most of the time
   (``PUBSUB NUMSUB`` 0, ``PUBLISH`` reaching nobody) once a socket has been quiet for longer than
   the request timeout. This service pings Redis on the subscription after a quiet request
   timeout and counts only an unanswered PING as a stall.
3. *Hangup reaches every client on SIGTERM.* Upstream's HTTP ``Shutdown`` does not write to
   hijacked (WebSocket) connections. Here SIGTERM makes every socket send hangup and close 1000
   before the process exits 0.

Seeded bugs (:data:`MUTANTS`) are chosen with ``mutants={...}`` (``STATUS_MUTANTS`` for the
process). Start it with :class:`Status2Service`; :mod:`.service` is the program.
"""

from __future__ import annotations

from .launch import ServiceConfig, Status2Service
from .mutants import MUTANTS

__all__ = ["MUTANTS", "ServiceConfig", "Status2Service"]
