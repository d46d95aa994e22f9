"""The one error the investigation's parsers raise: text that is not what the tool prints."""

from __future__ import annotations


class InvestigateParseError(ValueError):
    """Tool output that cannot be parsed: says which tool, which line, and why (one printable line)."""

    def __init__(self, tool: str, message: str, line_no: int | None = None, line: str | None = None) -> None:
        where = f" line {line_no}" if line_no is not None else ""
        shown = f": {line[:80]!r}" if line is not None else ""
        super().__init__(f"could not parse {tool} output{where}: {message}{shown}")
        self.tool = tool
        self.line_no = line_no
