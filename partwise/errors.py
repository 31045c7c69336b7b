"""Errors for bad input: one line naming the file, the line or key, and the problem.

The CLI prints ``InputError`` as that one line and exits with status 2, without a traceback.
Validators collect :class:`Problem` records instead of raising on the first one.
"""
from __future__ import annotations

from dataclasses import dataclass
from os import PathLike


def _where(path: str | PathLike | None, where: str | int | None) -> str:
    parts = []
    if path is not None:
        parts.append(str(path))
    if where is not None and where != "":
        parts.append(f"line {where}" if isinstance(where, int) else str(where))
    return ":".join(parts)


@dataclass(frozen=True)
class Problem:
    """One problem found in an input: ``path``, ``where`` (1-based line number or a key path) and ``reason``."""

    path: str
    where: str | int | None
    reason: str

    def __str__(self) -> str:
        loc = _where(self.path, self.where)
        return f"{loc}: {self.reason}" if loc else self.reason


class PartwiseError(Exception):
    """Base class of errors the CLI reports as one line with exit status 2."""

    exit_code = 2


class InputError(PartwiseError):
    """A malformed input file. ``str(err)`` is ``"<path>:line <n>: <reason>"`` or ``"<path>:<key>: <reason>"``."""

    def __init__(self, path: str | PathLike | None, where: str | int | None, reason: str):
        self.problem = Problem(str(path) if path is not None else "", where, reason)
        super().__init__(str(self.problem))

    @classmethod
    def from_problem(cls, problem: Problem) -> "InputError":
        return cls(problem.path or None, problem.where, problem.reason)


class ConfigError(PartwiseError):
    """A bad configuration value or command-line argument."""


class MissingFileError(PartwiseError):
    """A file the user must provide (weights, dataset) is absent; the message says where to put it."""
