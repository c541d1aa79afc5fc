"""The supervisor domain: a relay supervisor (and supervisord) against a pure model.

Example::

    from statemodels import run_machine
    from statemodels.supervisor import RelayConfig, bundled_relay_machine

    def test_relay():
        run_machine(lambda: bundled_relay_machine(RelayConfig()))
"""

from .commands import (
    Action,
    AddRule,
    ContWorker,
    FailSpawns,
    KillProgram,
    KillWorker,
    ListPrograms,
    ListRules,
    ListWorkers,
    Output,
    Ping,
    RemoveRule,
    Rule,
    SendRaw,
    Settle,
    StartProgram,
    StopProgram,
    StopWorker,
    WorkerRules,
)
from .driver import RelayClient, RelayDriver, RelayFaults, RelayUnavailable, clear_relay
from .machine import (
    RelayMachine,
    SupervisordMachine,
    bundled_policy,
    bundled_relay_machine,
    relay_machine,
    supervisord_machine,
)
from .model import (
    BackoffPolicy,
    ExponentialBackoff,
    LinearThenFatal,
    RelayModel,
    Renewed,
    RetryPlan,
    SupervisordModel,
    derive_rule_id,
    validate_rule,
)
from .supervisord import PROGRAMS, SupervisordDriver, SupervisordServer
from .system import CONCURRENT_ONLY, MUTANTS, BundledRelay, RelayConfig, RelayPool, SpawnAttempt

__all__ = [
    "CONCURRENT_ONLY",
    "MUTANTS",
    "PROGRAMS",
    "Action",
    "AddRule",
    "BackoffPolicy",
    "BundledRelay",
    "ContWorker",
    "ExponentialBackoff",
    "FailSpawns",
    "KillProgram",
    "KillWorker",
    "LinearThenFatal",
    "ListPrograms",
    "ListRules",
    "ListWorkers",
    "Output",
    "Ping",
    "RelayClient",
    "RelayConfig",
    "RelayDriver",
    "RelayFaults",
    "RelayMachine",
    "RelayModel",
    "RelayPool",
    "RelayUnavailable",
    "RemoveRule",
    "Renewed",
    "RetryPlan",
    "Rule",
    "SendRaw",
    "Settle",
    "SpawnAttempt",
    "StartProgram",
    "StopProgram",
    "StopWorker",
    "SupervisordDriver",
    "SupervisordMachine",
    "SupervisordModel",
    "SupervisordServer",
    "WorkerRules",
    "bundled_policy",
    "bundled_relay_machine",
    "clear_relay",
    "derive_rule_id",
    "relay_machine",
    "supervisord_machine",
    "validate_rule",
]
