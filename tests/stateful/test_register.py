"""The worked example, end to end: a Redis-backed register store against a dict model.

Every domain copies this pattern: one test runs the machine against the correct bundled system
at the active budget; one test per seeded bug shows the machine catches it and shrinks it.
"""

from __future__ import annotations

import pytest

from statemodels.engine import catch_mutant, run_machine
from statemodels.errors import ConfigurationError
from statemodels.register import RegisterDriver, RegisterMachine


def test_register_store_agrees_with_its_model(statemodels_redis):
    run_machine(lambda: RegisterMachine(RegisterDriver(statemodels_redis)))


@pytest.mark.mutant
def test_register_machine_catches_a_seeded_bug(statemodels_redis):
    """The sample hunt of a first run; every mutant is hunted in tests/mutants/."""
    found = catch_mutant(
        lambda: RegisterMachine(RegisterDriver(statemodels_redis, {"delete-reports-missing"})),
        budget="ci",
        max_steps=3,
    )
    assert found.signature == "RegisterMachine/Delete/existed:differs"


def test_an_unknown_mutant_is_a_one_line_error(statemodels_redis):
    with pytest.raises(ConfigurationError) as info:
        RegisterDriver(statemodels_redis, {"cas-blnd"})
    assert str(info.value) == (
        "unknown mutant(s) 'cas-blnd': choose from cas-blind, cas-get-then-set, "
        "delete-reports-missing, incr-from-one"
    )


def test_the_driver_leaves_nothing_behind(statemodels_redis):
    driver = RegisterDriver(statemodels_redis)
    driver.store.put("a", 1)
    driver.close()
    client = statemodels_redis.client()
    try:
        assert list(client.scan_iter(match=driver.store._prefix + "*")) == []
    finally:
        client.close()
