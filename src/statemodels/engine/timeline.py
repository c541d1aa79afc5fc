"""A self-contained HTML timeline of a checked history: one row per client, inline SVG, no CDN.

Each operation is a bar from its invocation to its completion. Time runs left to right by *event
order* (every distinct instant gets the same width), so a burst of fast operations is as readable
as a slow one; the real offsets are in each bar's tooltip. Colours:

- green: placed in the longest linearizable prefix (its number is its place in that order);
- red: the operation that cannot be placed;
- grey: not needed to explain the prefix (later, or in another partition);
- dashed to the right edge: ``info`` -- effect unknown, possibly never;
- struck through: ``fail`` -- no effect, left out of the check.

Open the file in any browser; it loads nothing from the network.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .history import Operation
    from .linearizability import CheckResult

__all__ = ["render_html"]

_ROW = 34
_COL = 26
_LEFT = 110
_TOP = 40


def render_html(result: CheckResult) -> str:
    """The whole page for ``result`` (see the module docstring)."""
    ops = list(result.history)
    placed: dict[int, int] = {}
    culprit = None
    if result.violation is not None:
        placed = {op.index: n for n, op in enumerate(result.violation.linearization, 1)}
        culprit = result.violation.operation.index
    else:
        for order in result.linearization:
            placed.update({op.index: n for n, op in enumerate(order, 1)})
    instants = sorted({op.invoked for op in ops} | {op.completed for op in ops if op.completed})
    column = {t: i for i, t in enumerate(instants)}
    clients = result.history.clients
    row = {c: i for i, c in enumerate(clients)}
    width = _LEFT + _COL * (len(instants) + 2)
    height = _TOP + _ROW * len(clients) + 20
    origin = instants[0] if instants else 0
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="monospace" font-size="11">'
    ]
    for client, i in row.items():
        y = _TOP + i * _ROW
        parts.append(f'<text x="4" y="{y + 18}">client {html.escape(str(client))}</text>')
        rule = y + _ROW - 2
        parts.append(f'<line x1="{_LEFT}" y1="{rule}" x2="{width}" y2="{rule}" stroke="#eee"/>')
    for op in ops:
        parts.append(_bar(op, row[op.client], column, width, origin, placed, culprit))
    parts.append("</svg>")
    title = f"statemodels history: {result.verdict}"
    explanation = html.escape(result.explain())
    return (
        "<!doctype html>\n<html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:1em}pre{background:#f6f6f6;padding:.5em}"
        "svg rect:hover{stroke:#000;stroke-width:2}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><pre>{explanation}</pre>"
        f"<div style='overflow-x:auto'>{''.join(parts)}</div>"
        "<p>green: placed (number = order); red: cannot be placed; grey: not placed; "
        "dashed: effect unknown (info); struck through: failed (no effect).</p>"
        "</body></html>\n"
    )


def _bar(
    op: Operation,
    lane: int,
    column: dict[int, int],
    width: int,
    origin: int,
    placed: dict[int, int],
    culprit: int | None,
) -> str:
    y = _TOP + lane * _ROW + 4
    x1 = _LEFT + _COL * column[op.invoked]
    x2 = width - 4 if op.completed is None else _LEFT + _COL * column[op.completed] + _COL - 4
    if op.index == culprit:
        fill = "#f4a3a3"
    elif op.index in placed:
        fill = "#a8dba8"
    else:
        fill = "#dddddd"
    dash = ' stroke-dasharray="4 3"' if op.status == "info" else ""
    end = "never/unknown" if op.completed is None else f"+{(op.completed - origin) / 1e6:.3f} ms"
    tip = html.escape(f"{op.describe()}\ninvoked +{(op.invoked - origin) / 1e6:.3f} ms, end {end}")
    label = html.escape(_short(repr(op.command), max(4, (x2 - x1) // 7)))
    number = placed.get(op.index)
    parts = [
        f'<g><title>{tip}</title><rect x="{x1}" y="{y}" width="{max(x2 - x1, 6)}" height="22" '
        f'rx="3" fill="{fill}" stroke="#555"{dash}/>',
        f'<text x="{x1 + 3}" y="{y + 15}">{label}</text>',
    ]
    if number is not None:
        parts.append(f'<text x="{x1 + 2}" y="{y - 1}" font-size="9" fill="#060">{number}</text>')
    if op.status == "fail":
        parts.append(f'<line x1="{x1}" y1="{y + 11}" x2="{x2}" y2="{y + 11}" stroke="#900"/>')
    parts.append("</g>")
    return "".join(parts)


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
