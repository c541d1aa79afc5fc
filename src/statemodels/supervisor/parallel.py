"""The relay, concurrently: control clients add, remove and list rules at once, judged by
linearizability.

The sequential relay machine sends one request, waits for its answer, then sends the next: a
supervisor that holds a request across an ``await`` (and lets another request change the rule
table meanwhile) looks correct to it. Here each parallel suffix is a control client of its own
(its own ``RelayClient``: one Unix-socket connection per request, as the protocol has it), in its
own thread; the history must be explained by some order of single requests through
:class:`~statemodels.supervisor.model.RelayModel`, the sequential machine's model::

    with RelayPool() as pool:
        run_machine(lambda: RelayParallelMachine(RelayParallelDriver(pool)))

What is judged: ``AddRule`` / ``RemoveRule`` succeed or answer ``Error`` as the model says, and
``ListRules`` lists exactly the rules the order implies. Timing is not: the model's latency bound
is off (a history's intervals are its timing), and workers are not observed (their restarts are
the sequential machine's business).

Not partitioned: ``ListRules`` reads every rule, and an ``AddRule`` that re-uses an id on another
interface moves the rule, so no key splits the history into independent parts. Programs are
small (a prefix of 2, three suffixes of 2), so one search is cheap.
"""

from __future__ import annotations

import math
from typing import Any

import attrs
from hypothesis import strategies as st

from ..engine import Outcome, Step
from ..engine.parallel import ParallelMachine
from .commands import AddRule, ListRules, RemoveRule, Rule
from .driver import RelayClient, RelayDriver
from .machine import bundled_policy
from .model import RelayModel
from .system import BundledRelay, RelayPool

__all__ = [
    "HashableRelayModel",
    "RelayControlClient",
    "RelayParallelDriver",
    "RelayParallelMachine",
    "commands",
]

# Two rule ids (one drawn three times in four) on two interfaces: adds of one id collide (an
# upsert, a change when the interface or port differs), adds of both race for the table,
# removes of one id race each other. Adds weigh twice: a remove or a list needs an add
# before it to show anything. (A nested one_of is flattened: weights are counts of branches.)
rule_ids = st.sampled_from(["r1", "r1", "r1", "r2"])
_add = st.builds(
    AddRule,
    st.builds(
        Rule,
        st.sampled_from(["eth0", "eth1"]),
        st.just("239.1.2.3"),
        st.sampled_from([5000, 5001]),
        rule_id=rule_ids,
    ),
)
commands = st.one_of(_add, _add, st.builds(RemoveRule, rule_ids), st.just(ListRules()))


@attrs.frozen(eq=False)
class HashableRelayModel:
    """A :class:`RelayModel` as a search state: equal and hashed by what it holds.

    ``RelayModel`` keeps plain dicts (rules, slots, faults), so attrs cannot hash it; the
    checker's memo needs to. ``apply`` is the model's own, its next model wrapped again.
    """

    model: RelayModel

    def _key(self) -> tuple[Any, ...]:
        m = self.model
        return (
            tuple(sorted(m.rules.items())),
            tuple(sorted(m.slots.items())),
            tuple(sorted(m.faults.items())),
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HashableRelayModel) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def apply(self, cmd: Any) -> Step:
        step = self.model.apply(cmd)
        return Step(HashableRelayModel(step.model), step.expect, step.parts)


class RelayControlClient:
    """One control client: its own :class:`RelayClient` (a connection per request, a timeout on
    each), used by one thread."""

    def __init__(self, socket_path: str, timeout: float) -> None:
        self._driver = RelayDriver(RelayClient(socket_path, timeout=timeout))

    def run(self, cmd: Any) -> Outcome:
        return self._driver.run(cmd)

    def close(self) -> None:
        self._driver.close()  # aborts a request in flight, from any thread


class RelayParallelDriver:
    """Control clients of one bundled relay from ``pool``, reset (``Reset``) between runs.

    Args:
        pool: where the relay comes from (reused across examples after a verified reset).
        timeout: seconds each request may take (connect, write, read).
    """

    def __init__(self, pool: RelayPool, *, timeout: float = 2.0) -> None:
        self._pool = pool
        self._timeout = timeout
        self.relay: BundledRelay = pool.acquire()

    def client(self, number: int) -> RelayControlClient:
        return RelayControlClient(self.relay.socket_path, self._timeout)

    def reset(self) -> None:
        self.relay.request("Reset", timeout=self._timeout)

    def close(self) -> None:
        self._pool.release(self.relay)  # verified (or replaced) when next acquired


class RelayParallelMachine(ParallelMachine):
    """A prefix and three parallel suffixes of rule requests from separate control clients."""

    commands = commands
    lanes = 3
    max_prefix = 2
    max_suffix = 2
    #: The relay's refusals are the model's to judge (no such rule, an invalid one).
    judged = frozenset({"Error"})
    #: Both rules exist when a program starts, so drawn removes race each other at once (a
    #: remove needed a drawn add before it, and few tiny programs had one).
    initial = (
        AddRule(Rule("eth0", "239.1.2.3", 5000, rule_id="r1")),
        AddRule(Rule("eth1", "239.1.2.3", 5000, rule_id="r2")),
    )
    #: A final read: an add lost to a concurrent one shows without a drawn ListRules after it.
    final = (ListRules(),)

    def __init__(self, driver: RelayParallelDriver, **kwargs: Any) -> None:
        # No latency bound: under concurrency a history judges order, and its intervals time it.
        model = RelayModel(policy=bundled_policy(driver.relay.config), latency=math.inf)
        super().__init__(driver, HashableRelayModel(model), **kwargs)
