"""The reload machine: builds, reloads, fleets and failures against :class:`ReloadModel`.

Each step is drawn by one rule from :func:`~statemodels.strategies.reload.reload_actions` (a
``one_of`` of what the model allows now; one rule shrinks far better than a rule per command).
``Cascade`` and ``Rapid`` are sequences of the same commands, each step judged on its own. After
every step the view invariant checks, polled for ``view_within`` seconds: the orchestrator's
identity, every service's identity and restart count, no zombie child of the orchestrator, and
each running dependent's own report of the dependency process it is connected to.

Example::

    with FleetPool("process-compose") as pool:
        run_machine(lambda: ReloadMachine.on(pool))
"""

from __future__ import annotations

from typing import Any, ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import initialize, rule

from ..engine import ModelMachine
from ..strategies import reload as strategies
from ..strategies.reload import BreakThenReload, Cascade, Rapid
from .commands import BreakBinary, Build, Inspect, Reload, Resources
from .driver import ReloadDriver
from .model import ReloadModel, Tolerances

__all__ = ["ReloadMachine"]


class ReloadMachine(ModelMachine):
    """Drives a fleet under an orchestrator and checks it against :class:`ReloadModel`.

    Args:
        driver: a :class:`ReloadDriver` on a fleet in its initial state (all running).
        orchestrator: ``"supervisord"`` or ``"process-compose"`` (which failure shape applies).
        failures: draw the failure commands (breaking binaries, killing the orchestrator).
    """

    machine_name = "ReloadMachine"
    # Dependents reconnect by themselves (every 20 ms); a supervisord reaps within its 1 s loop.
    view_within: ClassVar[float] = 1.5

    def __init__(
        self,
        driver: ReloadDriver,
        *,
        orchestrator: str,
        tolerances: Tolerances | None = None,
        failures: bool = True,
        step_timeout: float | None = None,
    ) -> None:
        depends_on = {s.name: s.depends_on for s in driver.fleet.services}
        # A fleet may say which services are built artifacts and which report no commit (the
        # NATS fleet: its clients are Python, nats-server cannot report ours); default: all, none.
        built = getattr(driver.fleet, "built", tuple(depends_on))
        model = ReloadModel.initial(
            orchestrator,
            depends_on,
            reports=driver.fleet.reports,
            tolerances=tolerances or Tolerances(health_within=driver.health_within),
            unbuilt=tuple(n for n in depends_on if n not in built),
            silent=tuple(getattr(driver.fleet, "silent", ())),
        )
        super().__init__(driver, model, step_timeout=step_timeout or 30.0)
        self.reload: ReloadDriver = driver
        self.failures = failures

    @classmethod
    def on(cls, pool: Any, **options: Any) -> ReloadMachine:
        """A machine on ``pool``'s fleet, reset to its initial state (given back at teardown)."""
        driver = pool.acquire()
        try:
            return cls(driver, orchestrator=pool.kind, **options)
        except BaseException:
            driver.close()
            raise

    @property
    def state(self) -> ReloadModel:
        assert isinstance(self.model, ReloadModel)
        return self.model

    @initialize()
    def inspect(self) -> None:
        """Every example starts by reading the version files: what each service was built as."""
        self.execute(Inspect())

    @rule(data=st.data())
    def step(self, data: st.DataObject) -> None:
        """One command (or a named sequence of them), drawn from what the model allows now."""
        model = self.state
        running = model.in_state("running")
        action = data.draw(
            strategies.reload_actions(
                services=model.services,
                running=running,
                stopped=model.in_state("stopped"),
                reloadable=model.reloadable(),
                broken=model.broken,
                has_dependents=tuple(n for n in model.services if model.dependents(n)),
                orchestrator_up=model.orchestrator_up,
                corrupt=model.orchestrator != "supervisord",
                failures=self.failures,
            ),
            label="action",
        )
        self.perform(action)

    def perform(self, action: Any) -> None:
        """Carry one action out; ``Cascade``, ``Rapid`` and ``BreakThenReload`` expand into
        judged steps."""
        match action:
            case Cascade(service=name):
                out = self.execute(Reload(name))
                if out.skipped or out.error is not None:
                    return
                for dependent in self.state.dependents(name):
                    if dependent in self.state.reloadable():
                        self.execute(Reload(dependent))
            case BreakThenReload(service=name, how=how):
                if not self.execute(BreakBinary(name, how)).skipped:
                    self.execute(Reload(name))
            case Rapid(service=name, times=times):
                # The baseline is taken after a first cycle: what a reload allocates once
                # (lazily) is not a leak; what every reload adds is.
                for cycle in range(times):
                    for command in (Build(name), Reload(name)):
                        if self.execute(command).skipped:
                            return
                    if cycle == 0:
                        self.execute(Resources())
                self.execute(Resources())
            case command:
                self.execute(command)
