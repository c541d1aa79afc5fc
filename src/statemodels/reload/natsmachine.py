"""The reload machine on the NATS fleet: the real nats-server reloaded under load.

The same model, driver and view invariant as :class:`~statemodels.reload.ReloadMachine`, on
:class:`~statemodels.reload.system.natsfleet.NatsFleet`: the broker is the real ``nats-server``
(proven by ``sha256(/proc/<pid>/exe)`` and by the pid holding its monitoring socket), ``sub``
and ``collector`` are nats-py clients that must reconnect by themselves, and a writer pushes
records through JetStream into the store while the broker and the collector are reloaded.

Steps are drawn from :func:`nats_actions`, one ``one_of`` from what the model allows now: the
reloads a broker fleet sees (broker, clients, several at once, a cascade, a short rapid run),
a dependent stopped and started, and the data-integrity pair -- ``StartWriter`` opens a run,
``CheckRecords`` closes it and judges the store. Failures (deleted binaries, a killed
orchestrator) are the C fleet's machine's: this one is about a broker and its clients.

Example::

    with FleetPool("process-compose", fleet=NatsFleet.create(redis.url)) as pool:
        run_machine(lambda: NatsReloadMachine.on(pool))
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
from hypothesis import strategies as st
from hypothesis.stateful import rule

from ..strategies.reload import Cascade, Rapid
from .commands import (
    Build,
    CheckRecords,
    Reload,
    ReloadMany,
    Resources,
    StartService,
    StartWriter,
    StopService,
)
from .driver import ReloadDriver
from .machine import ReloadMachine
from .model import ReloadModel, Tolerances

__all__ = ["NatsReloadMachine", "WhileWriting", "nats_actions"]


@attrs.frozen
class WhileWriting:
    """Records flow through ``action``: ``StartWriter``, the action, ``CheckRecords`` -- three
    judged steps drawn as one, so a repro shrinks to the action the data did not survive."""

    action: Any


def nats_actions(model: ReloadModel) -> st.SearchStrategy[Any]:
    """One step on the NATS fleet. The first branch is a broker reload (what shrinking ends
    on); the data-integrity run is one branch of nine, its action a reload of the collector or
    the broker (alone, together, or the broker's cascade)."""
    running = model.in_state("running")
    clients = tuple(n for n in model.services if n in model.unbuilt)
    choices: list[st.SearchStrategy[Any]] = []
    if "nats" in running:
        choices.append(st.just(Reload("nats")))
    if {"nats", "collector"} <= set(running):
        during = st.one_of(
            st.sampled_from(("collector", "nats")).map(Reload),
            st.just(ReloadMany(("collector", "nats"))),
            st.just(Cascade("nats")),
        )
        choices.append(during.map(WhileWriting))
    choices.append(st.just(Build("nats")))
    reloadable = tuple(n for n in model.services if n in running or n in clients)
    choices.append(st.sampled_from(reloadable).map(Reload))
    if len(reloadable) >= 2:
        many = st.lists(st.sampled_from(reloadable), min_size=2, max_size=3, unique=True)
        choices.append(many.map(lambda names: ReloadMany(tuple(sorted(names)))))
    choices.append(st.just(Cascade("nats")))
    choices.append(st.just(Rapid("nats", 3)))
    choices.append(st.just(Resources()))
    if "sub" in running:
        choices.append(st.just(StopService("sub")))
    else:
        choices.append(st.just(StartService("sub")))
    return st.one_of(choices)


class NatsReloadMachine(ReloadMachine):
    """:class:`ReloadMachine` on a NATS fleet (a pool made with ``fleet=NatsFleet...``)."""

    machine_name = "NatsReloadMachine"
    # nats-py reconnects after 50 ms, then resubscribes; a Python client on a loaded machine
    # can take a second or more. Judged one-sidedly: polled until it holds, never early.
    view_within: ClassVar[float] = 5.0

    def __init__(self, driver: ReloadDriver, **options: Any) -> None:
        options.setdefault("failures", False)
        # Python clients' RSS moves more than the C services' between samples.
        options.setdefault(
            "tolerances", Tolerances(health_within=driver.health_within, rss=16 << 20)
        )
        super().__init__(driver, **options)

    @rule(data=st.data())
    def step(self, data: st.DataObject) -> None:
        """One command (or a named sequence of them) on the NATS fleet."""
        self.perform(data.draw(nats_actions(self.state), label="action"))

    def perform(self, action: Any) -> None:
        """As :meth:`ReloadMachine.perform`, and ``WhileWriting`` expands into its three steps."""
        if isinstance(action, WhileWriting):
            if self.execute(StartWriter()).skipped:
                return
            self.perform(action.action)
            self.execute(CheckRecords())
            return
        super().perform(action)
