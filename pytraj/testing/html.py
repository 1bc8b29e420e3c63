"""Checks of pytraj's HTML (notebook views, the report): well formed and self-contained."""

from __future__ import annotations

import re
from html.parser import HTMLParser

__all__ = ["HTMLOutline", "external_references", "outline"]

# Elements HTML closes by itself (and SVG's self-closing ones, which the parser reports
# through handle_startendtag).
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}
_EXTERNAL = re.compile(
    r"""(?:\b(?:src|href|xlink:href|action|poster|data)\s*=\s*["']?\s*(?:https?:)?//)"""
    r"""|(?:url\(\s*["']?\s*(?:https?:)?//)|(?:@import)""",
    re.IGNORECASE,
)


class HTMLOutline(HTMLParser):
    """Parses a page, checking that every element closes in order; collects text,
    element counts and ids."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.counts: dict[str, int] = {}
        self.ids: set[str] = set()
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.counts[tag] = self.counts.get(tag, 0) + 1
        for key, value in attrs:
            if key == "id" and value:
                self.ids.add(value)
        if tag not in _VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.counts[tag] = self.counts.get(tag, 0) + 1

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes <{self.stack[-1] if self.stack else '-'}>")
            if tag in self.stack:
                while self.stack and self.stack.pop() != tag:
                    pass
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.text.append(data.strip())


def outline(page: str) -> HTMLOutline:
    """Parse ``page``; raise AssertionError when an element is left open or misnested."""
    parser = HTMLOutline()
    parser.feed(page)
    parser.close()
    problems = [*parser.problems, *(f"<{tag}> never closed" for tag in parser.stack)]
    if problems:
        raise AssertionError("malformed HTML: " + "; ".join(problems[:5]))
    return parser


def external_references(page: str) -> list[str]:
    """Every place where ``page`` would load something from outside (src/href/url()
    pointing to http(s) or //, and @import). An SVG's ``xmlns`` is not a load."""
    return [match.group(0) for match in _EXTERNAL.finditer(page)]
