"""The status2 model, its stream judge and its strategies: pure, fast, no servers."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from statemodels.engine import Anything, Bindings, Within
from statemodels.status2 import (
    ClientClose,
    ClientSend,
    Connect,
    Crowd,
    Heartbeat,
    Publish,
    RedisDrop,
    RedisOutage,
    RedisPause,
    ServiceConfig,
    Shutdown,
    Status2Model,
    Wait,
)
from statemodels.status2.driver import parse_metrics
from statemodels.status2.expect import Complete, Entry, Sound, judge
from statemodels.status2.model import decode, route
from statemodels.strategies.status2 import CHANNELS, payloads, status2_commands

CFG = ServiceConfig()


def test_route_accepts_channels_and_drops_one_trailing_slash():
    assert route(CFG, "/r1:status", None) == (101, "r1:status")
    assert route(CFG, "/r1:status/", None) == (101, "r1:status")
    assert route(CFG, "/a.b-c_d;e:f.g-h_9", None) == (101, "a.b-c_d;e:f.g-h_9")
    for bad in ("/r1:status//", "/r1status", "/r1:", "/:status", "/r1:a:b", "/r1:st%20atus"):
        assert route(CFG, bad, None) == (400, None), bad
    assert route(CFG, "/", None) == (404, None)


def test_route_checks_origins_with_wildcards_and_case():
    assert route(CFG, "/r1:s", "https://allowed.example")[0] == 101
    assert route(CFG, "/r1:s", "http://ALLOWED.example")[0] == 101
    assert route(CFG, "/r1:s", "https://app.trusted.example")[0] == 101
    assert route(CFG, "/r1:s", "https://trusted.example.evil.com")[0] == 403
    assert route(CFG, "/r1:s", "https://evil.example")[0] == 403
    assert route(CFG, "/r1:s", None)[0] == 101  # no Origin header: not a browser
    open_config = ServiceConfig(allowed_origins=())
    assert route(open_config, "/r1:s", "https://evil.example")[0] == 101


def test_decode_keeps_every_byte():
    raw = b"<&>\xff\xfe caf\xc3\xa9"
    assert decode(raw) == "<&>\udcff\udcfe café"
    assert decode(raw).encode("utf-8", "surrogateescape") == raw


@given(st.lists(st.binary(max_size=6), max_size=6))
def test_judge_accepts_exactly_what_is_owed(datas):
    entries = tuple(Entry("status", decode(d)) for d in datas)
    frames = [("status", decode(d)) for d in datas]
    assert judge(entries, None, frames, None) == (None, None)
    if frames:
        assert judge(entries, None, frames[:-1], None) == (None, "missing-frames")


def test_judge_names_each_way_a_stream_goes_wrong():
    a, b, h = Entry("status", "a"), Entry("status", "b"), Entry("hangup")
    assert judge((a, b), None, [("status", "b"), ("status", "a")], None)[0] == "reordered"
    assert judge((a, b), None, [("status", "b")], None)[0] == "lost"
    assert judge((a,), None, [("status", "a"), ("status", "a")], None)[0] == "duplicated"
    assert judge((a,), None, [("status", "A")], None)[0] == "mutated"
    assert judge((), None, [("status", "x")], None, frozenset({"x"}))[0] == "cross-channel"
    assert judge((a,), None, [("status", "a"), ("hangup", "")], None)[0] == "unexpected-hangup"
    assert judge((a,), None, [("other", "??")], None)[0] == "unknown-frame"
    assert judge((a,), None, [("status", "a")], 1000)[0] == "unexpected-close"
    assert judge((a, h), 1000, [("status", "a"), ("hangup", "")], 1001)[0] == "close-code"
    assert judge((a, h), 1000, [("status", "a"), ("hangup", "")], None) == (None, "not-closed")


def test_optional_entries_may_be_lost_and_only_they():
    gap, after = Entry("status", "gap", required=False), Entry("status", "after")
    assert judge((gap, after), None, [("status", "after")], None) == (None, None)
    assert judge((gap, after), None, [("status", "gap"), ("status", "after")], None) == (None, None)
    assert judge((gap, after), None, [], None) == (None, "missing-frames")
    # The same payload in the window and after it: one frame is the required one.
    twin = Entry("status", "gap")
    assert judge((gap, twin), None, [("status", "gap")], None) == (None, None)
    assert judge((gap, twin), None, [("status", "gap")] * 2, None) == (None, None)
    assert judge((gap, twin), None, [("status", "gap")] * 3, None)[0] == "duplicated"


def test_sound_and_complete_judge_every_socket():
    owed = {0: ((Entry("status", "a"),), None), 1: ((), None)}
    real = {0: ((("status", "a"),), None), 1: ((), None)}
    assert Sound(owed).check(real, Bindings()) is None
    assert Complete(owed).check(real, Bindings()) is None
    assert Complete(owed).check({**real, 0: ((), None)}, Bindings()) == "missing-frames"
    assert Sound(owed).check({**real, 1: ((("status", "a"),), None)}, Bindings()) == "mutated"


def test_a_cut_we_starved_ends_the_socket_and_nothing_else_is_excused():
    owed = {0: ((Entry("status", "a"), Entry("status", "b")), None)}
    cut = (("status", "a"), ("hangup", ""))
    # Not starved: a hangup nobody owed is the service's bug.
    assert Sound(owed).check({0: (cut, 1000, False)}, Bindings()) == "unexpected-hangup"
    # Starved: the cut was the service's right, and "b" is lost with the socket.
    assert Sound(owed).check({0: (cut, 1000, True)}, Bindings()) is None
    assert Complete(owed).check({0: (cut, 1000, True)}, Bindings()) is None
    # ... but never a wrong frame before it, nor a cut that is not a hangup with 1000.
    wrong = (("status", "z"), ("hangup", ""))
    assert Sound(owed).check({0: (wrong, 1000, True)}, Bindings()) == "mutated"
    assert Sound(owed).check({0: (cut, 1011, True)}, Bindings()) == "unexpected-hangup"


def test_the_model_adopts_a_starved_cut():
    model = _connected("/r1:status", "/r1:status")
    model = model.apply(Publish("r1:status", b"x")).model
    after = model.starved_cut(0)
    cut = after.socket(0)
    assert not cut.open and cut.close == 1000 and after.active == model.active - 1
    assert [(e.frame, e.required) for e in cut.entries] == [
        (("status", "x"), False),
        (("hangup", ""), True),
    ]
    assert after.socket(1) == model.socket(1) and after.subscribers("r1:status") == 1


def _connected(*paths: str) -> Status2Model:
    model = Status2Model()
    for p in paths:
        model = model.apply(Connect(p)).model
    return model


def test_a_publish_is_owed_to_the_channel_s_open_sockets_only():
    model = _connected("/r1:status", "/r1:status/", "/r1:log.1")
    step = model.apply(Publish("r1:status", b"x"))
    assert step.expect["receivers"].value == 2
    owed = {s.sock: s.entries for s in step.model.sockets}
    assert owed == {0: (Entry("status", "x"),), 1: (Entry("status", "x"),), 2: ()}
    assert step.model.forwarded == (2, 2)


def test_a_crowd_is_four_connects_and_reports_the_last():
    model = _connected("/r1:status")
    step = model.apply(Crowd("/r1:status"))
    assert step.expect["status"].value == 101 and step.expect["numsub"].value == 5
    assert len(step.model.open_sockets()) == 5 and step.model.active == model.active + 4
    refused = model.apply(Crowd("/r1:status", "https://evil.example"))
    assert refused.expect["status"].value == 403 and refused.model == model


def test_connect_expects_the_subscription_live_in_redis():
    model = _connected("/r1:status")
    step = model.apply(Connect("/r1:status", "https://allowed.example"))
    assert step.expect["numsub"].value == 2 and step.expect["numpat"].value == 0
    assert model.apply(Connect("/r1:status", "https://evil.example")).expect["status"].value == 403


def test_heartbeat_words():
    model = _connected("/r1:status")
    for word in ("pong", "PONG", "Init"):
        assert model.apply(Heartbeat(0, word)).expect["cut"].value is False
    for word in (None, "pongs", "ping"):
        step = model.apply(Heartbeat(0, word))
        assert step.expect["cut"].value is True
        assert step.expect["silent_ms"] == Within(CFG.pong_timeout_ms, math.inf)
        assert step.model.sockets[0].close == 1000 and step.model.active == 0


def test_oversized_frames_close_1009_without_hangup():
    step = _connected("/r1:status").apply(ClientSend(0, "oversized"))
    assert step.model.sockets[0].close == 1009 and step.model.sockets[0].entries == ()
    assert step.expect["close"].value == 1009
    for kind in ("garbage", "limit"):  # exactly the max message size is still accepted
        step = _connected("/r1:status").apply(ClientSend(0, kind))
        assert step.model.sockets[0].open and step.expect["close"].value is None


def test_a_wait_changes_nothing_and_its_durations_come_from_the_config():
    model = _connected("/r1:status")
    step = model.apply(Wait(650))
    assert step.model == model and step.expect["numsub"].value == {"r1:status": 1}
    assert model.waits() == (400 + 500 // 2, 600 + 100)
    slow = Status2Model(ServiceConfig(request_timeout_ms=1000, retry_base_ms=2000))
    assert slow.waits()[0] == 2000


def test_faults_are_one_branch_and_waits_another():
    def branches(**kw) -> int:
        return len(status2_commands(sockets=(0,), channels={"r1:status": 1}, **kw).branches)

    none = branches(drops=False)
    assert branches(drops=True, pause=True, outage=True, shutdown=True) == none + 1
    assert branches(drops=False, waits=(650, 700)) == none + 1


def test_loss_windows_and_retry_counts():
    model = _connected("/r1:status", "/r1:log.1")
    dropped = model.apply(RedisDrop(b"g")).model
    assert all(not e.required for s in dropped.sockets for e in s.entries)
    assert dropped.reconnects == (2 + 2, 2 + 4)
    paused = model.apply(RedisPause())
    assert paused.expect["reconnects"] == Within(4, 6)
    down = model.apply(RedisOutage())
    assert down.expect["gave_up"].value == 2
    assert down.model.reconnects == (2 + 4, 2 + 4)  # max_retries - 1 redials each
    assert down.expect["hangup_spread_ms"] == Anything()  # too few sockets to judge jitter
    four = _connected(*["/r1:status"] * 4).apply(RedisOutage())
    assert four.expect["hangup_spread_ms"] == Within(15.0, math.inf)


def test_shutdown_hangs_up_everyone_and_resets_the_counters():
    model = _connected("/r1:status").apply(ClientClose(0)).model
    model = model.apply(Connect("/r1:log.1")).model
    after = model.apply(Shutdown()).model
    assert [s.close for s in after.sockets] == [1000]
    assert after.sockets[0].entries[-1] == Entry("hangup")
    assert after.metrics()["connections_active"] == 0


def test_parse_metrics():
    text = "# HELP x\nstatus2_connections_active 3.0\nstatus2_write_errors_total 0.0\nother 1\n"
    assert parse_metrics(text) == {"connections_active": 3.0, "write_errors_total": 0.0}


@settings(max_examples=30)
@given(st.data())
def test_strategies_draw_only_what_the_model_allows(data):
    sockets = data.draw(st.lists(st.integers(0, 5), max_size=3, unique=True).map(tuple))
    cmd = data.draw(status2_commands(sockets=sockets, channels={}, outage=False, shutdown=False))
    if hasattr(cmd, "sock"):
        assert cmd.sock in sockets
    assert not isinstance(cmd, RedisOutage | Shutdown)
    if isinstance(cmd, Publish):
        assert cmd.channel in CHANNELS


@given(payloads(100))
def test_payloads_are_bytes(payload):
    assert isinstance(payload, bytes)
