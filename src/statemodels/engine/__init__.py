"""The domain-free engine: lockstep machine, expectations, divergences, budgets, timeouts.

It imports neither psycopg nor redis nor psutil: the real world lives in ``statemodels.infra``
and in each domain's driver.
"""

from .budgets import BUDGETS, Budget, activate, active, get_budget, hypothesis_settings
from .divergence import Divergence, Journal, JournalEntry, Mismatch, divergence_class, signature_of
from .eventually import EventuallyTimeout, eventually
from .expect import (
    AnyOf,
    Anything,
    Bind,
    Bindings,
    Changed,
    EachIn,
    Eq,
    Expect,
    Fails,
    Fresh,
    Latency,
    Matches,
    Renewed,
    Same,
    Within,
    as_expect,
    expect_map,
)
from .history import History, HistoryRecorder, Operation
from .linearizability import CheckResult, ModelSpec, check
from .machine import ModelMachine, compare
from .mutants import check_mutants
from .parallel import ParallelMachine
from .protocol import MISSING, Driver, Model, Outcome, Step
from .runner import NoExamplesRan, catch_mutant, database_key, run_machine
from .stats import MachineStats, known_signatures, load_known, registry, set_known
from .watchdog import StepTimeout, Watchdog

__all__ = [
    "BUDGETS",
    "MISSING",
    "AnyOf",
    "Anything",
    "Bind",
    "Bindings",
    "Budget",
    "Changed",
    "CheckResult",
    "Divergence",
    "Driver",
    "EachIn",
    "Eq",
    "EventuallyTimeout",
    "Expect",
    "Fails",
    "Fresh",
    "History",
    "HistoryRecorder",
    "Journal",
    "JournalEntry",
    "Latency",
    "MachineStats",
    "Matches",
    "Mismatch",
    "Model",
    "ModelMachine",
    "ModelSpec",
    "NoExamplesRan",
    "Operation",
    "Outcome",
    "ParallelMachine",
    "Renewed",
    "Same",
    "Step",
    "StepTimeout",
    "Watchdog",
    "Within",
    "activate",
    "active",
    "as_expect",
    "catch_mutant",
    "check",
    "check_mutants",
    "compare",
    "database_key",
    "divergence_class",
    "eventually",
    "expect_map",
    "get_budget",
    "hypothesis_settings",
    "known_signatures",
    "load_known",
    "registry",
    "run_machine",
    "set_known",
    "signature_of",
]
