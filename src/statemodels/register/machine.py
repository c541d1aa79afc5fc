"""The register machine: the smallest complete statemodels machine.

Run it against a Redis server (started by the ``statemodels_redis`` fixture)::

    def test_register(statemodels_redis):
        run_machine(lambda: RegisterMachine(RegisterDriver(statemodels_redis)))
"""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import rule

from ..engine import ModelMachine
from ..strategies.common import prefer
from .commands import Cas, Delete, Get, Incr, Put
from .driver import RegisterDriver
from .model import RegisterModel

__all__ = ["RegisterMachine"]

# Few keys and small values: collisions between commands are where the bugs are.
keys = st.sampled_from(["a", "b", "c"])
values = st.integers(-3, 3)


class RegisterMachine(ModelMachine):
    """Drives a register store and a dict model in lockstep."""

    def __init__(self, driver: RegisterDriver) -> None:
        super().__init__(driver, RegisterModel())

    @property
    def state(self) -> RegisterModel:
        assert isinstance(self.model, RegisterModel)
        return self.model

    @rule(key=keys, value=values)
    def put(self, key: str, value: int) -> None:
        self.execute(Put(key, value))

    @rule(key=keys)
    def get(self, key: str) -> None:
        self.execute(Get(key))

    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        # Mostly a key that is there: deleting an absent one changes nothing (it stays drawn).
        present = sorted(self.state.contents)
        key = data.draw(prefer(st.sampled_from(present) if present else None, keys), label="key")
        self.execute(Delete(key))

    @rule(key=keys, by=values)
    def incr(self, key: str, by: int) -> None:
        self.execute(Incr(key, by))

    @rule(key=keys, new=values, data=st.data())
    def cas(self, key: str, new: int, data: st.DataObject) -> None:
        # Mostly the value the key holds now (None if absent): a guessed ``expected`` matches
        # one time in eight, and a compare-and-set that never swaps tests half of itself.
        now = self.state.contents.get(key)
        expected = data.draw(prefer(st.just(now), st.none() | values), label="expected")
        self.execute(Cas(key, expected, new))
