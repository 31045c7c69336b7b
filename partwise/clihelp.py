"""Help texts of the command line: a formatter that keeps example lines as written, and the epilog builder."""
from __future__ import annotations

import argparse
import textwrap


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions are wrapped to the terminal as usual; paragraphs with indented lines (examples) are kept as
    written. A :class:`argparse.RawDescriptionHelpFormatter`, so epilogs keep their line breaks."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        out = []
        for para in text.split("\n\n"):
            lines = para.splitlines()
            if any(line.startswith(" ") for line in lines) or any(line.rstrip().endswith(":") for line in lines[:1]):
                out.append("\n".join(indent + line for line in lines))
            else:
                out.append(textwrap.fill(" ".join(para.split()), width, initial_indent=indent,
                                         subsequent_indent=indent))
        return "\n\n".join(out)


def examples(*commands: str) -> dict:
    """``add_parser`` keyword arguments: an ``examples:`` epilog with ``commands`` (one per line) and the
    formatter that keeps them as written."""
    return {"epilog": "examples:\n" + "\n".join(f"  {c}" for c in commands), "formatter_class": HelpFormatter}
