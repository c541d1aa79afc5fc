"""Seeded concurrency bugs of the bundled relay: a request held across an ``await``.

The relay is one asyncio loop and answers each request without awaiting, so a correct one is
atomic per request. These mutants write an audit line in a thread (``asyncio.to_thread``) in the
wrong place, and another client's request runs during that await. Only a concurrent history shows
them (:data:`~statemodels.supervisor.system.mutants.CONCURRENT_ONLY`).

They live here, not in ``supervisor.py``, so that the generated mutants of ``supervisor.py``
(:mod:`statemodels.mutation.relay`) stay what they were: one call seeds them.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

if __package__:
    from .rules import BadRequest
else:  # run as a script: the sibling modules sit beside us
    from rules import BadRequest  # type: ignore[no-redef]

_ADD, _REMOVE = "add-rmw-across-await", "remove-check-across-await"


def _audit(entry: Any) -> str:
    return json.dumps(entry, sort_keys=True)


def seed_concurrency_mutants(relay: Any) -> None:
    """Wrap ``relay.dispatch`` when one of these mutants is switched on; else do nothing."""
    chosen = relay.mutants & {_ADD, _REMOVE}
    if not chosen:
        return
    plain = relay.dispatch

    async def dispatch(request: Any) -> dict[str, Any]:
        if isinstance(request, dict) and len(request) == 1:
            ((name, body),) = request.items()
            if name == "AddRule" and _ADD in chosen:
                # The table is copied, the audit line awaited, and the copy stored back:
                # whatever another request changed during the await is lost.
                rules = dict(relay.rules)
                await asyncio.to_thread(_audit, request)
                relay.rules = rules
                return relay.add_rule(body)
            if name == "RemoveRule" and _REMOVE in chosen and isinstance(body, dict):
                # The id is checked, the audit line awaited, then the rule dropped "if still
                # there": two concurrent removes of one id both succeed.
                rule_id = body.get("rule_id")
                if set(body) != {"rule_id"} or not isinstance(rule_id, str):
                    raise BadRequest('RemoveRule takes {"rule_id": ...}')
                if rule_id not in relay.rules:
                    raise BadRequest(f"no rule with id {rule_id!r}")
                await asyncio.to_thread(_audit, request)
                if rule_id not in relay.rules:
                    return {"Success": f"rule {rule_id} removed"}
                return relay.remove_rule(rule_id)
        return await plain(request)

    relay.dispatch = dispatch
