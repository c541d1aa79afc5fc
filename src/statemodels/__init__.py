"""statemodels: Hypothesis state machines that test real infrastructure against pure models.

A test step is a command (plain data). The model says what must happen, the driver makes it
happen on the real system, and the engine compares the two; a mismatch is a
:class:`~statemodels.engine.Divergence` that Hypothesis shrinks to the shortest sequence of
commands that still diverges. See ``ARCHITECTURE.md`` at the repository root.

The public surface is re-exported here; domains live in ``statemodels.pggit``,
``statemodels.supervisor`` and ``statemodels.register`` (the worked example).
"""

from .engine import (
    AnyOf,
    Anything,
    Bind,
    Budget,
    Changed,
    Divergence,
    Eq,
    Expect,
    Fails,
    Fresh,
    Matches,
    ModelMachine,
    Outcome,
    Same,
    Step,
    Within,
    catch_mutant,
    eventually,
    get_budget,
    run_machine,
)
from .errors import ConfigurationError, MissingBinaryError, ServerError, StatemodelsError

__version__ = "0.1.0"

__all__ = [
    "AnyOf",
    "Anything",
    "Bind",
    "Budget",
    "Changed",
    "ConfigurationError",
    "Divergence",
    "Eq",
    "Expect",
    "Fails",
    "Fresh",
    "Matches",
    "MissingBinaryError",
    "ModelMachine",
    "Outcome",
    "Same",
    "ServerError",
    "StatemodelsError",
    "Step",
    "Within",
    "__version__",
    "catch_mutant",
    "eventually",
    "get_budget",
    "run_machine",
]
