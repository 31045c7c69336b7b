"""PaSta conditions -> SQL: ``hand: hold AND (head: inspect OR NOT foot: walk)``.

Grammar (keywords in any case)::

    expr   := term (OR term)*
    term   := factor (AND factor)*
    factor := NOT factor | "(" expr ")" | atom
    atom   := PART ":" STATE          e.g. ``hand: hold``, ``left_hand: reach for``; STATE ``*`` = any state

The user's text never reaches SQL unparsed: each atom must match :data:`_ATOM` (letters, digits, spaces and
``_ - / . , '``), is normalised to ``"part: state"`` and becomes ``list_contains(pasta, '<name>')`` with the name
quoted as an SQL string literal (quotes doubled). Anything else is a :class:`~partwise.errors.ConfigError`.
"""
from __future__ import annotations

import re

from partwise.errors import ConfigError

MAX_LENGTH = 2000
_TOKEN = re.compile(r"\s*(?:(?P<paren>[()])|(?P<kw>(?:AND|OR|NOT)(?![\w:]))|(?P<text>[^()]+?)(?=\s*(?:[()]|$)|\s+(?:AND|OR|NOT)(?![\w:])))",
                    re.IGNORECASE)
_NAME = r"[A-Za-z0-9_][A-Za-z0-9_ ./,'-]*"
_ATOM = re.compile(rf"^(?P<part>{_NAME})\s*:\s*(?P<state>{_NAME}|\*)$")


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise ConfigError(f"PaSta condition: cannot read {text[pos:pos + 30]!r}")
        pos = match.end()
        if match.group("paren"):
            out.append(("paren", match.group("paren")))
        elif match.group("kw"):
            out.append(("kw", match.group("kw").upper()))
        else:
            out.append(("atom", match.group("text").strip()))
    return out


def sql_string(text: str) -> str:
    """``text`` as an SQL string literal."""
    if "\x00" in text:
        raise ConfigError("PaSta condition: NUL character")
    return "'" + text.replace("'", "''") + "'"


def atom_sql(atom: str) -> str:
    match = _ATOM.match(atom)
    if not match:
        raise ConfigError(f"PaSta condition: {atom!r} is not 'part: state' (letters, digits, spaces, _ - / . , ')")
    part = " ".join(match.group("part").split())
    state = " ".join(match.group("state").split())
    if state == "*":  # any state of the part
        return f"EXISTS (SELECT 1 FROM unnest(pasta) AS _p(name) WHERE starts_with(_p.name, {sql_string(part + ': ')}))"
    return f"list_contains(pasta, {sql_string(f'{part}: {state}')})"


def to_sql(condition: str) -> str:
    """The SQL boolean expression (over the ``persons`` column ``pasta``) of a PaSta condition."""
    if not condition or not condition.strip():
        raise ConfigError("PaSta condition: empty")
    if len(condition) > MAX_LENGTH:
        raise ConfigError(f"PaSta condition: longer than {MAX_LENGTH} characters")
    tokens = _tokens(condition)
    pos = 0

    def peek():
        return tokens[pos] if pos < len(tokens) else (None, None)

    def expr(depth: int) -> str:
        nonlocal pos
        if depth > 50:
            raise ConfigError("PaSta condition: nested too deeply")
        parts = [term(depth)]
        while peek() == ("kw", "OR"):
            pos += 1
            parts.append(term(depth))
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def term(depth: int) -> str:
        nonlocal pos
        parts = [factor(depth)]
        while peek() == ("kw", "AND"):
            pos += 1
            parts.append(factor(depth))
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"

    def factor(depth: int) -> str:
        nonlocal pos
        kind, value = peek()
        if kind == "kw" and value == "NOT":
            pos += 1
            return f"(NOT {factor(depth + 1)})"
        if kind == "paren" and value == "(":
            pos += 1
            inner = expr(depth + 1)
            if peek() != ("paren", ")"):
                raise ConfigError("PaSta condition: missing ')'")
            pos += 1
            return inner
        if kind == "atom":
            pos += 1
            return atom_sql(value)
        raise ConfigError(f"PaSta condition: expected 'part: state', NOT or '(' but got {value or 'the end'!r}")

    sql = expr(0)
    if pos != len(tokens):
        raise ConfigError(f"PaSta condition: unexpected {tokens[pos][1]!r}")
    return sql
