"""The HTML report, opened in a real browser: headless Chromium renders it, we screenshot it and
assert on the rendered DOM that the charts, a divergence and the known signatures are there.

CI installs Debian's ``chromium`` (``.ci/run``). Without it, and outside CI, the browser half is
skipped with the command that installs it; the report's content is still checked on its HTML.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

from statemodels import report as reports

pytest_plugins = ["pytester"]

RUN = """
from statemodels.engine import run_machine
from statemodels.register import RegisterDriver, RegisterMachine

def test_correct_store(statemodels_redis):
    run_machine(lambda: RegisterMachine(RegisterDriver(statemodels_redis)), database=None)

def test_two_bugs_one_known(statemodels_redis):
    bugs = {"delete-reports-missing", "incr-from-one"}
    # Deterministic: the known one must be met (and searched past) before the other is reported.
    run_machine(
        lambda: RegisterMachine(RegisterDriver(statemodels_redis, bugs)),
        database=None,
        derandomize=True,
    )
"""

KNOWN = "RegisterMachine/Delete/existed:differs"
NEVER = "RegisterMachine/Get/value:differs"

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1200,1600",
]


def _chromium() -> str | None:
    names = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
    found = next((path for path in map(shutil.which, names) if path), None)
    if found is None and os.environ.get("CI"):
        pytest.fail("CI must have Debian's chromium for the report test: apt-get install chromium")
    return found


def _browse(binary: str, page: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tempfile.mkdtemp(prefix="statemodels-chromium-")
    try:
        return subprocess.run(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)


class _Elements(HTMLParser):
    """Counts elements by (tag, class) and keeps the text: enough to assert on a DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, str]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.append((tag, dict(attrs).get("class") or ""))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def count(self, tag: str, cls: str) -> int:
        return sum(1 for t, c in self.seen if t == tag and cls in c.split())


def _check_dom(dom: str) -> None:
    page = _Elements()
    page.feed(dom)
    text = " ".join(page.text)
    assert page.count("svg", "histogram") == 1 and page.count("rect", "bin") >= 1
    assert page.count("svg", "kinds") == 1 and page.count("rect", "kind") == 5
    assert page.count("section", "divergence") == 1
    assert "RegisterMachine/Incr/value:differs" in text
    assert page.count("table", "mismatches") == 1 and page.count("table", "journal") == 1
    assert "statemodels replay .statemodels/traces/RegisterMachine/" in text
    assert "known divergences searched past" in text and KNOWN in text
    assert "known divergences never seen" in text and NEVER in text


def test_the_report_renders_in_chromium_with_charts_and_a_divergence(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_run=RUN)
    (pytester.path / "known.txt").write_text(f"{KNOWN}\n{NEVER}  # not seen\n", encoding="utf-8")
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "--budget",
        "ci",
        "--statemodels-known",
        "known.txt",
        "--statemodels-report",
        "out/report.html",
        "--statemodels-progress",
        "off",
    )
    result.assert_outcomes(passed=1, failed=1)
    assert not [line for line in result.outlines if line.startswith("statemodels: Register")]
    page = pytester.path / "out" / "report.html"
    data = json.loads((pytester.path / "out" / "report.json").read_text(encoding="utf-8"))
    result.stdout.fnmatch_lines(["report: out/report.html (data: out/report.json)"])

    (machine,) = data["machines"]
    assert machine["name"] == "RegisterMachine" and machine["examples"] > 1
    assert machine["p95_ms"] >= machine["median_ms"] > 0
    assert sum(machine["kinds"].values()) == machine["steps"] and machine["never_ran"] == []
    assert machine["known_searched_past"][KNOWN] >= 1
    assert data["known_never_seen"] == [NEVER]
    (found,) = data["divergences"]
    assert found["signature"] == "RegisterMachine/Incr/value:differs"
    assert found["mutant"] and found["replay"].startswith("statemodels replay ")

    html = page.read_text(encoding="utf-8")
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in html and "<script" not in html  # self-contained
    _check_dom(html)

    binary = _chromium()
    if binary is None:
        pytest.skip("the browser half needs Debian's chromium: apt-get install chromium")
    shot = pytester.path / "out" / "report.png"
    taken = _browse(binary, page, f"--screenshot={shot}")
    assert shot.exists() and shot.stat().st_size > 10_000, taken.stderr[-2000:]
    dom = _browse(binary, page, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    _check_dom(dom.stdout)
    keep = os.environ.get("STATEMODELS_KEEP_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)


def test_merged_shards_dedupe_divergences_by_signature_and_keep_the_shortest() -> None:
    def shard(steps: int, examples: int) -> dict:
        return {
            "format": reports.FORMAT,
            "budget": "deep",
            "machines": [
                {
                    "name": "M",
                    "budget": "deep",
                    "examples": examples,
                    "steps": 10,
                    "step_ms_sample": [1.0, 2.0, 3.0],
                    "kinds": {"A": 10},
                    "never_ran": ["B"],
                    "known_searched_past": {"M/A/x:differs": 1},
                    "known_never_seen": [],
                }
            ],
            "divergences": [
                {"signature": "M/A/y:differs", "mutant": False, "steps": steps, "machine": "M"}
            ],
            "known_never_seen": ["M/B/z:differs"],
        }

    merged = reports.merge([shard(5, 3), shard(2, 4), shard(7, 1)])
    (m,) = merged["machines"]
    assert m["examples"] == 8 and m["steps"] == 30 and m["kinds"] == {"A": 30}
    assert m["known_searched_past"] == {"M/A/x:differs": 3} and m["never_ran"] == ["B"]
    assert len(m["step_ms_sample"]) == 9 and m["median_ms"] == 2.0
    (d,) = merged["divergences"]
    assert d["steps"] == 2
    assert merged["known_never_seen"] == ["M/B/z:differs"]
