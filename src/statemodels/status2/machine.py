"""The status2 machine: sockets, publishes, heartbeats, client frames, Redis faults, SIGTERM.

Each step is one command drawn by one rule from
:func:`~statemodels.strategies.status2.status2_commands` (a ``one_of`` of what the model allows
now: it shrinks far better than a rule per command). After every step each socket's frames are
judged against what it is owed (:mod:`statemodels.status2.expect`): something wrong having
arrived diverges at once; something owed may take up to ``SLACK`` seconds to arrive. A
``Scrape`` judges the four metrics, polled for up to two seconds (the service updates its gauge
when a handler finishes, a moment after the socket closed).

Example::

    with bundled_status2(redis_server) as svc:
        run_machine(lambda: bundled_machine(svc, redis_server))
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from hypothesis import strategies as st
from hypothesis.stateful import rule

from ..engine import ModelMachine
from ..infra.redis import RedisServer
from ..strategies import status2 as strategies
from .commands import Command, RedisOutage, Scrape
from .config import ServiceConfig
from .driver import SLACK, Status2Driver
from .model import Status2Model
from .system.launch import Status2Service

__all__ = ["Status2Machine", "bundled_machine", "bundled_status2"]


class Status2Machine(ModelMachine):
    """Drives a status2 and checks it against :class:`Status2Model`.

    Args:
        driver: a :class:`Status2Driver` (fresh per example).
        drops / pause / outage / shutdown: which faults the machine may cause (``CLIENT KILL``,
            ``CLIENT PAUSE``, killing Redis, SIGTERM to the service).
    """

    machine_name = "Status2Machine"

    def __init__(
        self,
        driver: Status2Driver,
        *,
        drops: bool = True,
        pause: bool = True,
        outage: bool = True,
        shutdown: bool = True,
        step_timeout: float | None = None,
    ) -> None:
        super().__init__(driver, Status2Model(config=driver.config), step_timeout=step_timeout)
        self.status2 = driver
        self.faults = {"drops": drops, "pause": pause, "outage": outage, "shutdown": shutdown}

    @property
    def state(self) -> Status2Model:
        assert isinstance(self.model, Status2Model)
        return self.model

    @rule(data=st.data())
    def step(self, data: st.DataObject) -> None:
        """One command, drawn from what the model says is possible now."""
        self._adopt_starved_cuts()  # a cut that came between two steps: before drawing
        model, cfg = self.state, self.state.config
        cmd = data.draw(
            strategies.status2_commands(
                sockets=tuple(s.sock for s in model.open_sockets()),
                channels=model.channels(),
                drops=self.faults["drops"],
                pause=self.faults["pause"],
                outage=self.faults["outage"] and cfg.max_retries > 0,
                shutdown=self.faults["shutdown"],
                metrics=cfg.metrics,
                max_message=cfg.max_message,
                waits=model.waits(),
            ),
            label="command",
        )
        self.perform(cmd)

    def perform(self, cmd: Command) -> None:
        """Run one command, then judge every socket's frames (and the metrics on a Scrape)."""
        self._adopt_starved_cuts()
        outcome = self.execute(cmd)
        if outcome.skipped:
            return
        self.check_eventually(
            "streams",
            self.state.streams(),
            self.status2.streams,
            within=SLACK,
            every=0.01,
            final=("streams",),
        )
        self._adopt_starved_cuts()
        # After an outage too: what giving up left behind (the gauge, the redials) is judged
        # there, not only if a later step happens to be a Scrape.
        if isinstance(cmd, Scrape | RedisOutage) and self.state.config.metrics:
            self.check_eventually("metrics", self.state.metrics(), self.status2.metrics, within=2.0)

    def _adopt_starved_cuts(self) -> None:
        """Cuts the driver proves we starved (our client loop got no CPU for a pong timeout)
        were the service's right: the streams check let them pass, and the model holds them."""
        if self.tainted is not None:
            return
        self.status2.catch_up()
        for sock in self.status2.starved_cuts([s.sock for s in self.state.open_sockets()]):
            self.model = self.state.starved_cut(sock)


@contextmanager
def bundled_status2(
    redis_server: RedisServer,
    config: ServiceConfig | None = None,
    mutants: Iterable[str] = (),
) -> Iterator[Status2Service]:
    """The bundled service on ``redis_server``, stopped (and its temp dir removed) at the end."""
    svc = Status2Service.start(
        config or ServiceConfig(), redis_url=redis_server.url, mutants=mutants
    )
    try:
        yield svc
    finally:
        svc.stop()


def bundled_machine(
    service: Status2Service, redis_server: RedisServer, **faults: bool
) -> Status2Machine:
    """A machine on the bundled ``service`` (one fresh driver per example)."""
    driver = Status2Driver(
        service.base_url,
        redis_server.url,
        service.config,
        service=service,
        redis_server=redis_server,
        channels=(*strategies.CHANNELS, strategies.EDGE_CHANNEL),
    )
    faults.setdefault("outage", redis_server.owned)
    return Status2Machine(driver, **faults)
