"""An operator-based mutator for PL/pgSQL install scripts such as the bundled ``pggit.sql``.

No SQL mutation tool is maintained on PyPI, and the bundled system is one script of tables,
functions and event triggers, so this is a small one of our own. It lexes the script (comments
and string literals are never touched), then proposes one-token or one-span edits:

=========  =====================================================================================
``cmp``    a comparison negated or its boundary moved: ``=``/``<>``, ``<``/``<=`` ..., ``IS [NOT]
           NULL``, ``IS [NOT] DISTINCT FROM``, ``NOT IN``/``IN``, ``NOT LIKE``, ``[NOT] FOUND``
``arith``  ``+`` and ``-`` swapped
``const``  an integer literal +1 and -1 (limits: ``BETWEEN 1 AND 255``, ``% 1000000`` ...)
``cond``   a condition dropped: one side of an ``AND``/``OR``, a whole ``WHERE``, an ``IF``/
           ``WHEN`` condition made ``true`` or ``false``, a ``CHECK`` constraint removed
``stmt``   one PL/pgSQL statement replaced by ``NULL;``; a top-level ``CREATE INDEX``/``INSERT``
           dropped
``swap``   two adjacent columns swapped in an ``INSERT`` column list or a ``SELECT`` list
=========  =====================================================================================

Every mutant has a stable id (``op:L<line>:<what>``) so that triage -- which survivors are
equivalent -- can be written down and checked on the next run. Example::

    >>> from statemodels.mutation.sql import mutants
    >>> body = "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $f$ SELECT 1 WHERE a = b; $f$;"
    >>> [m.id for m in mutants(body)][:3]
    ['cmp:L1:=-><>', 'const:L1:1->0', 'const:L1:1->2']
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import attrs

__all__ = ["OPERATORS", "SqlMutant", "Token", "lex", "mutants"]

OPERATORS = ("cmp", "arith", "const", "cond", "stmt", "swap")

_TOKEN = re.compile(
    r"""
    (?P<comment>--[^\n]*)
  | (?P<dollar>\$[A-Za-z_]*\$)
  | (?P<string>[Ee]?'(?:[^']|'')*')
  | (?P<qident>"(?:[^"]|"")*")
  | (?P<number>\d+(?![A-Za-z_]))
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op><>|<=|>=|!=|:=|\|\||::|[-+*/%<>=])
  | (?P<space>\s+)
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)

_NEGATE = {"=": ["<>"], "<>": ["="], "!=": ["="]}
_BOUNDARY = {"<": ["<=", ">="], "<=": ["<", ">"], ">": [">=", "<="], ">=": [">", "<"]}
# Words that start or end a condition's operand span (upper case).
_COND_START = {"WHERE", "IF", "ELSIF", "WHEN", "AND", "OR", "ON", "CHECK", "SELECT"}
_COND_END = {
    "THEN", "LOOP", "AND", "OR", "ORDER", "LIMIT", "RETURNING", "GROUP", "FOR", "INTO", "ON",
    "LEFT", "JOIN", "WHERE", "END", "ELSE", "UNION",
}  # fmt: skip
_OPTIONS = {"ERRCODE", "MESSAGE", "DETAIL", "HINT"}
_STMT_WORDS = {"PERFORM", "UPDATE", "INSERT", "DELETE", "RAISE", "RETURN", "SELECT", "CONTINUE"}
_STMT_AFTER = {"BEGIN", "THEN", "ELSE", "LOOP"}


@attrs.frozen
class Token:
    kind: str
    text: str
    start: int
    line: int

    @property
    def end(self) -> int:
        return self.start + len(self.text)

    @property
    def upper(self) -> str:
        return self.text.upper() if self.kind == "word" else self.text


@attrs.frozen
class SqlMutant:
    """One edit of the script: replace ``source[start:end]`` by ``replacement``."""

    id: str
    op: str
    line: int
    start: int
    end: int
    replacement: str
    description: str

    def apply(self, source: str) -> str:
        return source[: self.start] + self.replacement + source[self.end :]


def lex(source: str) -> list[Token]:
    """Every token of ``source`` (whitespace and comments included, so offsets add up)."""
    out: list[Token] = []
    line = 1
    for m in _TOKEN.finditer(source):
        kind = m.lastgroup or "other"
        out.append(Token(kind, m.group(), m.start(), line))
        line += m.group().count("\n")
    return out


def _code(tokens: list[Token]) -> list[Token]:
    return [t for t in tokens if t.kind not in ("space", "comment")]


def _context(code: list[Token]) -> list[str]:
    """Per token: ``"plpgsql"``, ``"sql"`` (inside a function body of that language) or
    ``"ddl"`` (top level)."""
    out: list[str] = []
    inside: str | None = None
    language = "sql"
    for i, tok in enumerate(code):
        if tok.kind == "dollar":
            if inside is None:
                inside = tok.text
                out.append("ddl")
                continue
            if tok.text == inside:
                inside = None
                out.append("ddl")
                continue
        if inside is None and tok.upper == "LANGUAGE" and i + 1 < len(code):
            language = code[i + 1].text.lower()
        out.append("ddl" if inside is None else language)
    return out


def _depth_scan(code: list[Token], i: int, step: int, stops: set[str]) -> int:
    """From ``code[i]`` walking by ``step``: the index of the last token of the operand (before
    a stop word, an unbalanced paren or a ``;``)."""
    depth = 0
    j = i
    last = i - step
    while 0 <= j < len(code):
        t = code[j]
        opener, closer = ("(", ")") if step > 0 else (")", "(")
        if t.text == opener:
            depth += 1
        elif t.text == closer:
            if depth == 0:
                break
            depth -= 1
        elif depth == 0 and (t.text in (";", ",") or t.kind == "dollar" or t.upper in stops):
            break
        last = j
        j += step
    return last


class _Builder:
    def __init__(self, source: str) -> None:
        self.source = source
        self.seen: set[str] = set()
        self.out: list[SqlMutant] = []

    def add(self, op: str, first: Token, last: Token, repl: str, what: str) -> None:
        start, end = first.start, last.end
        original = self.source[start:end]
        if original == repl:
            return
        # The line of the edit's first word, not of a separator it takes along.
        lead = len(original) - len(original.lstrip(", \n\t"))
        line = first.line + original[:lead].count("\n")
        mid = f"{op}:L{line}:{what}"
        n, base = 2, mid
        while mid in self.seen:  # two identical edits on one line
            mid, n = f"{base}#{n}", n + 1
        self.seen.add(mid)
        desc = f"line {line}: {' '.join(original.split())[:60]!r} -> {repl[:60]!r}"
        self.out.append(SqlMutant(mid, op, line, start, end, repl, desc))


def mutants(source: str, ops: tuple[str, ...] = OPERATORS) -> list[SqlMutant]:
    """Every mutant of ``source`` for the chosen operators, in script order per operator."""
    code = _code(lex(source))
    ctx = _context(code)
    b = _Builder(source)
    for op in ops:
        for args in _GENERATORS[op](code, ctx):
            b.add(op, *args)
    return b.out


Proposal = tuple[Token, Token, str, str]


def _cmp(code: list[Token], ctx: list[str]) -> Iterator[Proposal]:
    in_set = False
    for i, t in enumerate(code):
        u = t.upper
        if u == "SET":
            in_set = True
        elif u in ("WHERE", "RETURNING", ";", "FROM") or t.text == ";":
            in_set = False
        option = i > 0 and code[i - 1].upper in _OPTIONS  # RAISE ... USING ERRCODE = '...'
        if (
            t.kind == "op"
            and not in_set
            and not option
            and (ctx[i] != "ddl" or t.text in _BOUNDARY)
        ):
            for repl in _NEGATE.get(t.text, []) + _BOUNDARY.get(t.text, []):
                yield t, t, repl, f"{t.text}->{repl}"
        nxt = code[i + 1] if i + 1 < len(code) else None
        if u == "IS" and nxt is not None:
            if nxt.upper == "NOT":
                yield t, nxt, "IS", "IS_NOT->IS"
            elif nxt.upper in ("NULL", "DISTINCT"):
                yield t, t, "IS NOT", "IS->IS_NOT"
        if u == "NOT" and nxt is not None and nxt.upper in ("IN", "LIKE", "FOUND"):
            yield t, nxt, nxt.text, f"NOT_{nxt.upper}->{nxt.upper}"
        if u == "FOUND" and code[i - 1].upper not in ("NOT",) and code[i - 1].upper == "IF":
            yield t, t, "NOT FOUND", "FOUND->NOT_FOUND"


def _arith(code: list[Token], ctx: list[str]) -> Iterator[Proposal]:
    for i, t in enumerate(code):
        prev = code[i - 1] if i else None
        binary = prev is not None and (
            prev.kind in ("word", "number", "qident") or prev.text == ")"
        )
        if t.kind == "op" and t.text in "+-" and binary:
            repl = "-" if t.text == "+" else "+"
            yield t, t, repl, f"{t.text}->{repl}"


def _const(code: list[Token], ctx: list[str]) -> Iterator[Proposal]:
    for i, t in enumerate(code):
        if t.kind == "number" and not (i and code[i - 1].text == "."):
            n = int(t.text)
            for repl in (n - 1, n + 1):
                if repl >= 0:
                    yield t, t, str(repl), f"{n}->{repl}"


def _cond(code: list[Token], ctx: list[str]) -> Iterator[Proposal]:
    for i, t in enumerate(code):
        u = t.upper
        if u in ("AND", "OR"):
            if _between(code, i):
                continue
            left = _depth_scan(code, i - 1, -1, _COND_START)
            right = _depth_scan(code, i + 1, 1, _COND_END)
            if left > i - 1 or right < i + 1:
                continue
            yield t, code[right], "", f"drop_{u}_right"
            yield code[left], t, "", f"drop_{u}_left"
        elif u in ("IF", "ELSIF", "WHEN") and ctx[i] == "plpgsql":
            end = _depth_scan(code, i + 1, 1, {"THEN", "LOOP"} if u != "WHEN" else {";"})
            if end < i + 1 or code[i - 1].upper == "END":
                continue
            for value in ("true", "false"):
                yield code[i + 1], code[end], value, f"{u}->{value}"
        elif u == "WHERE":
            end = _depth_scan(code, i + 1, 1, _COND_END - {"AND", "OR"})
            if end >= i + 1:
                yield t, code[end], "", "drop_WHERE"
        elif u == "CHECK" and i + 1 < len(code) and code[i + 1].text == "(":
            end = _depth_scan(code, i + 2, 1, set()) + 1  # the closing paren
            first = i - 2 if i >= 2 and code[i - 2].upper == "CONSTRAINT" else i
            # Take one separating comma along, or the table's column list stops parsing.
            if end + 1 < len(code) and code[end + 1].text == ",":
                end += 1
            elif code[first - 1].text == "," and code[end + 1].text == ")":
                first -= 1
            yield code[first], code[end], "", "drop_CHECK"


def _between(code: list[Token], i: int) -> bool:
    """Whether the ``AND`` at ``i`` is the one of ``x BETWEEN a AND b``."""
    return any(code[j].upper == "BETWEEN" for j in range(i - 1, max(i - 4, -1), -1))


def _stmt(code: list[Token], ctx: list[str]) -> Iterator[Proposal]:
    for i, t in enumerate(code):
        prev = code[i - 1] if i else None
        starts = prev is None or prev.text == ";" or prev.upper in _STMT_AFTER
        if not starts:
            continue
        end = _depth_scan(code, i, 1, set())
        if end + 1 >= len(code) or code[end + 1].text != ";":
            continue
        if ctx[i] == "plpgsql":
            assigns = i + 1 < len(code) and code[i + 1].text == ":="
            if t.upper in _STMT_WORDS or assigns:
                yield t, code[end], "NULL", f"drop_{t.upper if not assigns else 'ASSIGN'}"
        elif ctx[i] == "ddl" and prev is not None and prev.text == ";":
            head = " ".join(c.upper for c in code[i : i + 3])
            if head.startswith(("CREATE INDEX", "CREATE UNIQUE INDEX", "INSERT")):
                yield t, code[end + 1], "", f"drop_{head.replace(' ', '_')}"


def _swap(code: list[Token], ctx: list[str]) -> Iterator[Proposal]:
    for i, t in enumerate(code):
        u = t.upper
        if u == "INSERT":
            paren = next(
                (j for j in range(i + 1, min(i + 7, len(code))) if code[j].text == "("), None
            )
            if paren is not None:
                yield from _swap_list(code, paren + 1, "insert_columns")
        elif u == "SELECT" and ctx[i] != "ddl":
            yield from _swap_list(code, i + 1, "select_list")
        elif u == "INTO" and code[i - 1].upper not in ("INSERT",) and ctx[i] == "plpgsql":
            yield from _swap_list(code, i + 1, "into_targets")


def _swap_list(code: list[Token], start: int, what: str) -> Iterator[Proposal]:
    stops = {"FROM", "INTO", "VALUES", "WHERE", "SELECT", "ON", "ORDER", "LIMIT"}
    items: list[tuple[int, int]] = []
    j = start
    while j < len(code):
        end = _depth_scan(code, j, 1, stops)
        if end < j:
            break
        items.append((j, end))
        if end + 1 < len(code) and code[end + 1].text == ",":
            j = end + 2
        else:
            break
    if len(items) < 2 or code[start].upper in ("DISTINCT", "*"):
        return
    for k in range(len(items) - 1):
        (a0, a1), (b0, b1) = items[k], items[k + 1]
        a = "".join(tok_text(code, a0, a1))
        bb = "".join(tok_text(code, b0, b1))
        yield code[a0], code[b1], f"{bb}, {a}", f"swap_{what}_{k}_{k + 1}"


def tok_text(code: list[Token], first: int, last: int) -> list[str]:
    """The text of ``code[first..last]`` joined with single spaces where the source had any."""
    out: list[str] = []
    for k in range(first, last + 1):
        if k > first and code[k].start > code[k - 1].end:
            out.append(" ")
        out.append(code[k].text)
    return out


_GENERATORS = {
    "cmp": _cmp,
    "arith": _arith,
    "const": _const,
    "cond": _cond,
    "stmt": _stmt,
    "swap": _swap,
}
