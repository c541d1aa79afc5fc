"""The NATS fleet's pure parts: the data-integrity judge and the model's per-service facts."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from statemodels.engine import Eq
from statemodels.reload.commands import CheckRecords, Reload, StartWriter
from statemodels.reload.driver import judge_records
from statemodels.reload.model import ReloadModel

records = st.lists(st.integers(0, 10**12), max_size=30).map(
    lambda times: [(seq, ts) for seq, ts in enumerate(times, start=1)]
)


@given(records)
def test_a_store_that_kept_everything_is_judged_clean(written) -> None:
    assert judge_records(written, list(written)) == {
        "lost": 0,
        "duplicated": 0,
        "out_of_order": 0,
        "retimed": 0,
    }


@given(records, st.data())
def test_each_kind_of_damage_is_counted_for_what_it_is(written, data) -> None:
    if not written:
        return
    i = data.draw(st.integers(0, len(written) - 1))
    dropped = written[:i] + written[i + 1 :]
    assert judge_records(written, dropped)["lost"] == 1
    doubled = [*written[: i + 1], written[i], *written[i + 1 :]]
    assert judge_records(written, doubled) == {**judge_records(written, written), "duplicated": 1}
    seq, ts = written[i]
    retimed = [*written[:i], (seq, ts + 1), *written[i + 1 :]]
    assert judge_records(written, retimed)["retimed"] == 1
    if len(written) >= 2:
        assert judge_records(written, written[::-1])["out_of_order"] == len(written) - 1


def test_the_model_judges_no_exe_of_a_client_and_no_commit_of_a_silent_service() -> None:
    model = ReloadModel.initial(
        "process-compose",
        {"nats": (), "sub": ("nats",)},
        unbuilt=("sub",),
        silent=("nats",),
    )
    broker = model.apply(Reload("nats")).expect
    assert "exe_sha256:nats" in broker and "commit:nats" not in broker
    client = model.apply(Reload("sub")).expect
    assert (
        "identity:sub" in client and "exe_sha256:sub" not in client and "commit:sub" not in client
    )


def test_a_data_run_demands_nothing_lost_duplicated_reordered_or_retimed() -> None:
    model = ReloadModel.initial("process-compose", {"nats": ()})
    writing = model.apply(StartWriter()).model
    assert writing.writing
    expect = writing.apply(CheckRecords()).expect
    for field in ("lost", "duplicated", "out_of_order", "retimed"):
        assert expect[field] == Eq(0), field
    assert not writing.apply(CheckRecords()).model.writing
