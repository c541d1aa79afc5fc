"""The user's loop inside a pytest session: traces, live progress, the report, the summary.

The statemodels plugin calls :func:`configure` once; everything else is hooks of the
:class:`LoopPlugin` registered there, so the plugin module itself gains one line. Options (each
also ``STATEMODELS_<NAME>`` and ini ``statemodels_<name>``):

- ``--statemodels-trace-dir DIR`` (default ``.statemodels/traces``; ``off``): where traces go.
- ``--statemodels-report PATH.html``: write the report (and ``PATH.json``) at session end.
- ``--statemodels-progress auto|tty|plain|off`` and ``--statemodels-progress-every SECONDS``.

The end-of-session section separates divergences of the systems under test from mutants caught
by hunts (tests marked ``mutant``, or runs on a system with seeded bugs) and lists the traces
written, each with the command that replays it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from . import report as reports
from . import workers
from .engine import hooks
from .errors import ConfigurationError
from .progress import Progress
from .trace import TraceWriter

__all__ = ["LoopPlugin", "configure"]

_NAME = "statemodels-loop"


def configure(config: pytest.Config, value: Callable[[pytest.Config, str], Any]) -> None:
    """Read the loop's options and register :class:`LoopPlugin` (raises ConfigurationError)."""
    if config.pluginmanager.has_plugin(_NAME):
        return
    try:
        trace_dir = value(config, "trace_dir")
        report_path = value(config, "report")
        mode = str(value(config, "progress")).strip().lower()
        every = float(value(config, "progress_every"))
    except ValueError:
        raise ConfigurationError(
            "progress_every must be a number of seconds: e.g. --statemodels-progress-every 30"
        ) from None
    if mode not in ("auto", "tty", "plain", "off"):
        raise ConfigurationError(
            f"progress must be auto, tty, plain or off (got {mode!r}): --statemodels-progress"
        )
    if every <= 0:
        raise ConfigurationError(f"progress_every must be > 0 seconds (got {every!r})")
    if report_path and not str(report_path).endswith((".html", ".htm")):
        raise ConfigurationError(
            f"the report path must end in .html (got {report_path!r}): the JSON is written "
            "beside it, e.g. --statemodels-report out/report.html"
        )
    plugin = LoopPlugin(config, trace_dir, report_path, mode, every)
    config.pluginmanager.register(plugin, _NAME)


class LoopPlugin:
    """Subscribes the trace writer, the report recorder and live progress for one session."""

    def __init__(
        self,
        config: pytest.Config,
        trace_dir: str | None,
        report: str | None,
        mode: str,
        every: float,
    ) -> None:
        self.config = config
        off = not trace_dir or str(trace_dir).strip().lower() in ("off", "none", "0")
        self.writer = None if off else TraceWriter(Path(str(trace_dir)))
        self.recorder = reports.Recorder(self.writer)
        self.report_path = report
        self.progress: Progress | None = None
        #: What pytest-xdist workers handed over (pytest -n): their reports, their traces.
        self.worker_reports: list[dict[str, Any]] = []
        self.worker_traces: list[str] = []
        self.passed: set[str] = set()
        # A worker's terminal is not the user's: under pytest -n there is no live progress.
        quiet = config.getoption("collectonly", False) or workers.is_worker(config)
        if mode != "off" and not quiet:
            tty = mode == "tty" or (mode == "auto" and _stdout_is_tty())
            self.progress = Progress(self._write, tty=tty, plain_every=every)
        self._listeners = [x for x in (self.writer, self.recorder, self.progress) if x is not None]
        for listener in self._listeners:
            hooks.subscribe(listener)

    # -- output around pytest's capture -------------------------------------------------------

    def _write(self, text: str, redraw: bool) -> None:
        capman = self.config.pluginmanager.getplugin("capturemanager")
        tw = self.config.get_terminal_writer()

        def emit() -> None:
            if redraw:
                tw.write("\r" + text + "\x1b[K", flush=True)
            else:
                if tw.width_of_current_line:  # pytest's dots: start a line of our own
                    tw.line()
                tw.line(text)
                tw.flush()

        if capman is None:
            emit()
            return
        with capman.global_and_fixture_disabled():  # the user sees it even with capture on
            emit()

    # -- pytest hooks -------------------------------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Iterator[None]:
        self.recorder.test = item.nodeid
        self.recorder.in_hunt = item.get_closest_marker("mutant") is not None
        try:
            return (yield)
        finally:
            self.recorder.test = None
            self.recorder.in_hunt = False

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Which tests passed (also those of xdist workers: their reports reach us here)."""
        if report.when == "call" and report.passed:
            self.passed.add(report.nodeid)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: Any) -> Iterator[None]:
        if call.when == "call" and self.progress is not None:
            self.progress.clear()  # before pytest writes the result on that line
        yield

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if workers.is_worker(self.config):
            # The controller prints the summary and writes the one report (pytest -n).
            workers.hand_over(
                self.config,
                "loop",
                {
                    "report": self.recorder.to_json(),
                    "traces": [str(p) for p in self.writer.written] if self.writer else [],
                },
            )
            return
        if self.report_path:
            data = self.recorder.to_json()
            if self.worker_reports:
                data = reports.merge([data, *self.worker_reports])
            html_path, json_path = reports.write(data, self.report_path)
            self.written_report = (html_path, json_path)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """pytest-xdist: a worker's divergences and traces join this session's."""
        data = workers.received(node, "loop")
        if data is None:
            return
        self.worker_reports.append(data["report"])
        self.recorder.divergences.extend(data["report"]["divergences"])
        self.worker_traces.extend(data["traces"])

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        tr = terminalreporter
        divergences = self.recorder.divergences
        if not divergences and not getattr(self, "written_report", None):
            return
        # A test that passed asserted the divergence it met (an engine test on a toy bug, a
        # sample hunt): expected, like a hunt's catch, and not a system that diverged.
        hunts = [d for d in divergences if d["mutant"]]
        expected = [d for d in divergences if not d["mutant"] and d["test"] in self.passed]
        sut = [d for d in divergences if not d["mutant"] and d["test"] not in self.passed]
        tr.section("statemodels: divergences")
        tr.write_line(f"systems under test: {len(sut)} diverged", red=bool(sut), green=not sut)
        for d in sut:
            tr.write_line(f"    {d['signature']}  ({d['steps']} steps)  {d['test'] or ''}")
            if d["replay"]:
                tr.write_line(f"        {d['replay']}")
        tr.write_line(f"mutant hunts: {len(hunts)} mutant(s) caught")
        for d in hunts:
            what = ", ".join(d["mutants"]) or (d["test"] or "").rpartition("::")[2]
            tr.write_line(f"    {what}: {d['signature']}  ({d['steps']} steps)")
        if expected:
            tests = len({d["test"] for d in expected})
            tr.write_line(f"expected by {tests} passing test(s): {len(expected)} divergence(s)")
        written = len(self.writer.written) + len(self.worker_traces) if self.writer else 0
        if self.writer is not None and written:
            tr.write_line(f"traces written ({written}) under {self.writer.directory}")
        report = getattr(self, "written_report", None)
        if report:
            tr.write_line(f"report: {report[0]} (data: {report[1]})")

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        for listener in self._listeners:
            hooks.unsubscribe(listener)


def _stdout_is_tty() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False
