"""The run report: one self-contained HTML page (and its JSON) a CI run can upload.

``pytest --statemodels-report out/report.html`` writes ``out/report.html`` and
``out/report.json``. Per machine: budget, examples, steps, median and p95 step time, a step-time
histogram, a bar chart of how often each command kind ran (and the kinds that never ran), the
divergences with their tables, journals and replay commands, the known ones searched past and
the known ones never seen. Everything is inline (SVG charts, CSS; no script, no CDN): the page
opens on a machine without network.

The data comes from a :class:`Recorder` (an engine hooks listener); the page is rendered from
the JSON alone (:func:`render_html`), so shards of a deep search can be merged first
(:func:`merge`, ``statemodels report --merge``) and rendered once.
"""

from __future__ import annotations

import html
import json
import math
import statistics
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from . import trace as traces
from . import worlds
from .engine import stats
from .engine.budgets import Budget

__all__ = ["Recorder", "merge", "render_html", "write"]

FORMAT = "statemodels-report/1"
_SAMPLE_LIMIT = 50_000  # step times kept per machine: a p95 of 50k is as good as of millions
_JSON_SAMPLE = 2_000  # step times written to the JSON, for merging shards


class _Machine:
    def __init__(self, name: str) -> None:
        self.name = name
        self.budgets: list[str] = []
        self.examples = 0
        self.steps = 0
        self.seconds: list[float] = []
        self.kinds: Counter[str] = Counter()
        self.known: Counter[str] = Counter()


class Recorder:
    """Collects what the report shows; subscribe it to :mod:`statemodels.engine.hooks`."""

    def __init__(self, writer: traces.TraceWriter | None = None) -> None:
        self.writer = writer
        self.machines: dict[str, _Machine] = {}
        self.divergences: list[dict[str, Any]] = []
        self.budget: Budget | None = None
        #: Set by the plugin around a test marked ``mutant``: its catches are not the system's.
        self.in_hunt = False
        self.test: str | None = None
        self.started = time.time()

    def _machine(self, name: str) -> _Machine:
        if name not in self.machines:
            self.machines[name] = _Machine(name)
        return self.machines[name]

    # -- hooks --------------------------------------------------------------------------------

    def run_started(self, budget: Budget) -> None:
        self.budget = budget

    def example_started(self, machine: Any) -> None:
        record = self._machine(machine.name)
        record.examples += 1
        if self.budget is not None and self.budget.name not in record.budgets:
            record.budgets.append(self.budget.name)

    def step_done(self, machine: Any, command: Any, seconds: float) -> None:
        record = self._machine(machine.name)
        record.steps += 1
        record.kinds[type(command).__name__] += 1
        if len(record.seconds) < _SAMPLE_LIMIT:
            record.seconds.append(seconds)

    def divergence_seen(self, machine: Any, divergence: Any, known: bool) -> None:
        if known:
            self._machine(machine.name).known[divergence.signature] += 1

    def divergence_reported(self, divergence: Any, seed: int | None) -> None:
        data = None
        path = None
        if self.writer is not None:
            for p, d in reversed(self.writer.written.items()):
                if d["signature"] == divergence.signature and not d["known"]:
                    path, data = p, d
                    break
        if data is None:
            data = traces.trace_data(divergence, budget=self.budget, seed=seed)
        mutant = self.in_hunt or bool(data.get("mutants"))
        self.divergences.append(_divergence_entry(data, path, mutant=mutant, test=self.test))

    # -- output -------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        known_all = sorted(stats.known_signatures())
        hit = {s for m in self.machines.values() for s in m.known}
        machines = []
        for m in sorted(self.machines.values(), key=lambda m: m.name):
            kind = worlds.worlds().get(m.name)
            catalogue = list(kind.kinds) if kind is not None else []
            machines.append(
                {
                    "name": m.name,
                    "budget": ", ".join(m.budgets),
                    "examples": m.examples,
                    "steps": m.steps,
                    "step_ms_sample": [round(s * 1e3, 4) for s in _thin(m.seconds)],
                    "median_ms": _quantile(m.seconds, 0.5),
                    "p95_ms": _quantile(m.seconds, 0.95),
                    "kinds": dict(sorted(m.kinds.items())),
                    "never_ran": [k for k in catalogue if k not in m.kinds],
                    "known_searched_past": dict(sorted(m.known.items())),
                    "known_never_seen": [
                        s for s in known_all if s.startswith(m.name + "/") and s not in hit
                    ],
                }
            )
        return {
            "format": FORMAT,
            "generated": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            "budget": self.budget.name if self.budget else None,
            "machines": machines,
            "divergences": self.divergences,
            "known_never_seen": [s for s in known_all if s not in hit],
        }


def _divergence_entry(
    data: dict[str, Any], path: Path | None, *, mutant: bool, test: str | None
) -> dict[str, Any]:
    return {
        "machine": data["machine"],
        "signature": data["signature"],
        "mutant": mutant,
        "mutants": data.get("mutants") or [],
        "test": test,
        "steps": len(data["journal"]),
        "trace": str(path) if path is not None else None,
        "replay": f"statemodels replay {path}" if path is not None else None,
        "snippet": traces.python_snippet(data),
        "table": data["divergence"]["table"],
        "note": data["divergence"]["note"],
        "command": data["divergence"]["command"],
        "journal": [
            {k: e[k] for k in ("index", "command", "outcome", "ms")} for e in data["journal"]
        ],
    }


def _thin(values: Sequence[float]) -> list[float]:
    if len(values) <= _JSON_SAMPLE:
        return list(values)
    step = len(values) / _JSON_SAMPLE
    return [values[int(i * step)] for i in range(_JSON_SAMPLE)]


def _quantile(seconds: Sequence[float], q: float) -> float | None:
    if not seconds:
        return None
    if len(seconds) == 1:
        return float(f"{seconds[0] * 1e3:.4g}")
    cuts = statistics.quantiles(seconds, n=100, method="inclusive")
    value = statistics.median(seconds) if q == 0.5 else cuts[round(q * 100) - 1]
    return float(f"{value * 1e3:.4g}")


def merge(reports: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """One report of several (the shards of a deep search): counts add up, step samples are
    pooled, divergences are deduplicated by signature (the shortest repro kept)."""
    machines: dict[str, dict[str, Any]] = {}
    best: dict[tuple[str, bool], dict[str, Any]] = {}
    never_seen: set[str] | None = None
    budget = None
    for report in reports:
        budget = budget or report.get("budget")
        seen = set(report.get("known_never_seen", []))
        never_seen = seen if never_seen is None else never_seen & seen
        for m in report.get("machines", []):
            into = machines.setdefault(
                m["name"],
                {
                    **m,
                    "examples": 0,
                    "steps": 0,
                    "step_ms_sample": [],
                    "kinds": {},
                    "known_searched_past": {},
                    "never_ran": list(m["never_ran"]),
                },
            )
            into["examples"] += m["examples"]
            into["steps"] += m["steps"]
            into["step_ms_sample"] += m["step_ms_sample"]
            for k, n in m["kinds"].items():
                into["kinds"][k] = into["kinds"].get(k, 0) + n
            for sig, n in m.get("known_searched_past", {}).items():
                past = into["known_searched_past"]
                past[sig] = past.get(sig, 0) + n
            into["never_ran"] = sorted(set(into["never_ran"]) & set(m["never_ran"]))
        for d in report.get("divergences", []):
            key = (d["signature"], d["mutant"])
            if key not in best or d["steps"] < best[key]["steps"]:
                best[key] = d
    for m in machines.values():
        sample = [s / 1e3 for s in m["step_ms_sample"]]
        m["median_ms"], m["p95_ms"] = _quantile(sample, 0.5), _quantile(sample, 0.95)
        m["step_ms_sample"] = [round(s * 1e3, 4) for s in _thin(sample)]
        m["kinds"] = dict(sorted(m["kinds"].items()))
    return {
        "format": FORMAT,
        "generated": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "budget": budget,
        "machines": [machines[k] for k in sorted(machines)],
        "divergences": sorted(best.values(), key=lambda d: (d["mutant"], d["signature"])),
        "known_never_seen": sorted(never_seen or ()),
    }


def from_traces(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """Divergence entries of trace files (a shard that died before writing its report)."""
    out = []
    for path in paths:
        data = traces.load(path)
        if not data.get("known"):
            out.append(_divergence_entry(data, path, mutant=bool(data.get("mutants")), test=None))
    return out


def load(path: str | Path) -> dict[str, Any]:
    """Read a report's JSON; a missing or foreign file is a one-line error."""
    from .errors import ConfigurationError

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigurationError(f"cannot read report {str(path)!r}: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ConfigurationError(f"{str(path)!r} is not a statemodels report JSON")
    return data


def write(report: dict[str, Any], path: str | Path) -> tuple[Path, Path]:
    """Write ``PATH.html`` and ``PATH.json``; returns both paths."""
    html_path = Path(path)
    json_path = html_path.with_suffix(".json")
    html_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    html_path.write_text(render_html(report), encoding="utf-8")
    return html_path, json_path


# -- HTML -------------------------------------------------------------------------------------

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:2px 8px;
text-align:left;font-variant-numeric:tabular-nums}th{background:#f3f3f3}
code,pre{font:12px ui-monospace,monospace;background:#f6f6f6}pre{padding:.5em;overflow-x:auto}
.bad{color:#b00020}.ok{color:#137333}.muted{color:#777}.charts{display:flex;gap:2em;flex-wrap:wrap}
.divergence{border-left:4px solid #b00020;padding-left:1em;margin:1em 0}
.divergence.mutant{border-color:#e8a600}
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _histogram_svg(sample_ms: Sequence[float], width: int = 420, height: int = 160) -> str:
    if not sample_ms:
        return '<p class="muted">no steps</p>'
    lo, hi = max(min(sample_ms), 1e-3), max(max(sample_ms), 1e-3)
    bins = 20
    if hi / lo < 1.0001:
        edges = [lo * 0.9, hi * 1.1]
    else:  # log-spaced: step times span decades (0.2 ms lookups, 300 ms restarts)
        ratio = (hi / lo) ** (1 / bins)
        edges = [lo * ratio**i for i in range(bins + 1)]
    counts = [0] * (len(edges) - 1)
    for v in sample_ms:
        v = max(v, 1e-3)
        i = 0 if len(edges) == 2 else min(int(math.log(v / lo) / math.log(ratio)), bins - 1)
        counts[i] += 1
    top = max(counts)
    bar_w = (width - 40) / len(counts)
    bars = []
    for i, n in enumerate(counts):
        h = (height - 40) * n / top
        x, y = 30 + i * bar_w, height - 20 - h
        label = f"{edges[i]:.3g}-{edges[i + 1]:.3g} ms: {n}"
        bars.append(
            f'<rect class="bin" x="{x:.1f}" y="{y:.1f}" width="{bar_w - 1:.1f}" height="{h:.1f}" '
            f'fill="#4c78a8"><title>{label}</title></rect>'
        )
    return (
        f'<svg class="chart histogram" role="img" aria-label="step-time histogram" '
        f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">'
        f'<text x="30" y="14" font-size="12">step time (ms, log scale), sample of {len(sample_ms)} '
        f"steps</text>{''.join(bars)}"
        f'<line x1="30" y1="{height - 20}" x2="{width - 10}" y2="{height - 20}" stroke="#333"/>'
        f'<text x="30" y="{height - 5}" font-size="11">{lo:.3g}</text>'
        f'<text x="{width - 10}" y="{height - 5}" font-size="11" text-anchor="end">{hi:.3g}'
        "</text></svg>"
    )


def _kinds_svg(kinds: dict[str, int], never: Sequence[str], width: int = 420) -> str:
    rows = [*sorted(kinds.items(), key=lambda kv: -kv[1]), *((k, 0) for k in never)]
    if not rows:
        return '<p class="muted">no commands</p>'
    top = max(n for _, n in rows) or 1
    row_h, left = 18, 130
    height = 20 + row_h * len(rows)
    parts = []
    for i, (name, n) in enumerate(rows):
        y = 20 + i * row_h
        w = (width - left - 50) * n / top
        colour = "#4c78a8" if n else "#b00020"
        parts.append(
            f'<text x="{left - 6}" y="{y + 12}" font-size="12" text-anchor="end">{_e(name)}</text>'
            f'<rect class="kind" data-kind="{_e(name)}" x="{left}" y="{y + 2}" '
            f'width="{max(w, 1):.1f}" height="{row_h - 5}" fill="{colour}"/>'
            f'<text x="{left + max(w, 1) + 4:.1f}" y="{y + 12}" font-size="12" '
            f'fill="{colour}">{n if n else "never ran"}</text>'
        )
    return (
        f'<svg class="chart kinds" role="img" aria-label="commands by kind" width="{width}" '
        f'height="{height}" xmlns="http://www.w3.org/2000/svg">'
        f'<text x="0" y="12" font-size="12">commands run, by kind</text>{"".join(parts)}</svg>'
    )


def _table(head: Sequence[str], rows: Iterable[Sequence[Any]], cls: str = "") -> str:
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><tr>{th}</tr>{body}</table>'


def _divergence_html(d: dict[str, Any]) -> str:
    kind = "mutant caught by a hunt" if d["mutant"] else "divergence of the system under test"
    mutants = f" (mutants: {', '.join(d['mutants'])})" if d["mutants"] else ""
    parts = [
        f'<section class="divergence{" mutant" if d["mutant"] else ""}">',
        f"<h3>{_e(d['signature'])}</h3>",
        f"<p>{_e(kind)}{_e(mutants)}; {d['steps']} steps; at "
        f"<code>{_e(d['command'])}</code>{' in ' + _e(d['test']) if d.get('test') else ''}</p>",
        _table(
            ("field", "model", "real", "reason"),
            ((r["field"], r["model"], r["real"], r["reason"]) for r in d["table"]),
            "mismatches",
        ),
    ]
    if d.get("note"):
        parts.append(f"<p>{_e(d['note'])}</p>")
    parts.append(
        _table(
            ("#", "command", "outcome", "ms"),
            ((e["index"], e["command"], e["outcome"], e["ms"]) for e in d["journal"]),
            "journal",
        )
    )
    if d.get("replay"):
        parts.append(f'<p>replay: <code class="replay">{_e(d["replay"])}</code></p>')
    if d.get("snippet"):
        parts.append(f"<pre>{_e(d['snippet'])}</pre>")
    parts.append("</section>")
    return "".join(parts)


def render_html(report: dict[str, Any]) -> str:
    """The page for a report's JSON: no external resource of any kind."""
    sut = [d for d in report["divergences"] if not d["mutant"]]
    hunts = [d for d in report["divergences"] if d["mutant"]]
    verdict = (
        f'<p class="bad">{len(sut)} divergence(s) of the system under test</p>'
        if sut
        else '<p class="ok">no divergence of the system under test</p>'
    )
    out = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>statemodels report</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>statemodels report</h1><p class='muted'>{_e(report['generated'])}; budget "
        f"{_e(report.get('budget'))}</p>",
        verdict,
        f"<p>{len(hunts)} mutant(s) caught by hunts</p>",
        _table(
            ("machine", "budget", "examples", "steps", "median ms", "p95 ms"),
            (
                (m["name"], m["budget"], m["examples"], m["steps"], m["median_ms"], m["p95_ms"])
                for m in report["machines"]
            ),
            "summary",
        ),
    ]
    for m in report["machines"]:
        out.append(f'<h2 class="machine" id="{_e(m["name"])}">{_e(m["name"])}</h2>')
        out.append(
            f"<p>budget {_e(m['budget'])}: {m['examples']} examples, {m['steps']} steps; step "
            f"median {_e(m['median_ms'])} ms, p95 {_e(m['p95_ms'])} ms</p>"
        )
        out.append('<div class="charts">')
        out.append(_histogram_svg(m["step_ms_sample"]))
        out.append(_kinds_svg(m["kinds"], m["never_ran"]))
        out.append("</div>")
        if m["never_ran"]:
            out.append(f"<p class='bad'>never ran: {_e(', '.join(m['never_ran']))}</p>")
        past = m.get("known_searched_past") or {}
        if past:
            out.append("<h3>known divergences searched past</h3>")
            out.append(_table(("signature", "times"), sorted(past.items()), "known"))
        if m.get("known_never_seen"):
            out.append(f"<p>known, never seen: {_e(', '.join(m['known_never_seen']))}</p>")
        mine = [d for d in report["divergences"] if d["machine"] == m["name"]]
        if mine:
            out.append("<h3>divergences</h3>")
            out.extend(_divergence_html(d) for d in mine)
    orphans = {d["machine"] for d in report["divergences"]} - {
        m["name"] for m in report["machines"]
    }
    for name in sorted(orphans):
        out.append(f"<h2>{_e(name)}</h2>")
        out.extend(_divergence_html(d) for d in report["divergences"] if d["machine"] == name)
    if report.get("known_never_seen"):
        out.append("<h2>known divergences never seen</h2>")
        out.append("<ul>" + "".join(f"<li>{_e(s)}</li>" for s in report["known_never_seen"]))
        out.append("</ul>")
    out.append("</body></html>")
    return "\n".join(out)
