"""Seeded bugs of the bundled status2: name → the realistic mistake it makes."""

from __future__ import annotations

__all__ = ["MUTANTS"]

MUTANTS: dict[str, str] = {
    "pattern-subscribe": (
        "subscribes with PSUBSCRIBE '<runid>:*' (one subscription per run 'to save connections'), "
        "so a socket receives every channel of its run"
    ),
    "no-request-timeout": (
        "the request timeout is never applied: a stalled (paused) Redis hangs the subscription "
        "forever instead of being detected and resubscribed"
    ),
    "no-jitter": "backoff is always the ceiling: the redials of many sockets are synchronised",
    "retry-never-reset": (
        "the retry counter is not reset on a successful subscribe, so a socket gives up after "
        "max_retries errors in total rather than in a row"
    ),
    "pong-timeout-ignored": "the pong-timeout check is missing: a silent client is never cut",
    "ws-pong-counted": (
        "a WebSocket-level pong (answered by any client library by itself) refreshes last-seen"
    ),
    "pong-case-sensitive": "only a lowercase 'pong'/'init' counts; 'PONG' from a client is ignored",
    "origin-check-skipped": "the Origin allowlist is configured but never checked",
    "no-hangup-on-shutdown": "SIGTERM closes sockets with 1001 and no hangup frame",
    "gauge-leak-on-give-up": (
        "status2_connections_active is not decremented when a socket ends by giving up on Redis"
    ),
    "payload-utf8-replaced": "payloads re-encoded: invalid UTF-8 bytes become U+FFFD (upstream)",
    "payload-html-escaped": "payloads HTML-escaped 'for safety': <>& arrive as entities",
    "idle-channel-error": (
        "an idle channel is treated as a Redis error: the socket unsubscribes and resubscribes "
        "after every quiet request timeout (upstream), losing what is published in the gap"
    ),
    "trailing-slash-kept": "the trailing '/' of the path is not dropped: 'run:chan/' is refused",
    "no-read-limit": "the max message size is not set: an oversized client frame is accepted",
}
