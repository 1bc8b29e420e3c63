"""Text and HTML drawings of a tree, truncated so that big trees stay readable.

Leaves describe themselves through ``_summary()`` (a short one-line state); the
renderer knows nothing else about them. The HTML uses ``<details>`` elements only: no
scripts, styles from outside or other external resources, so it works in any notebook.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any, Protocol

__all__ = ["DrawnGroup", "DrawnNode", "leaf_html", "render_html", "render_text"]


class DrawnNode(Protocol):
    """What the drawings read of a node: its public interface, nothing more."""

    @property
    def name(self) -> str: ...
    @property
    def full_name(self) -> str: ...
    @property
    def comment(self) -> str: ...
    @property
    def is_group(self) -> bool: ...
    @property
    def is_link(self) -> bool: ...


class DrawnGroup(DrawnNode, Protocol):
    """A group as the drawings read it: a node with children."""

    @property
    def children(self) -> Mapping[str, Any]: ...


DISPLAY_MAX_CHILDREN = 20
HTML_MAX_NODES = 500


def _summary(node: DrawnNode) -> str:
    if node.is_link:
        target: DrawnNode = getattr(node, "target")  # noqa: B009  # links have one
        return f"-> {target.full_name}"
    summary = getattr(node, "_summary", None)
    text = summary() if callable(summary) else ""
    return text


def render_text(
    group: DrawnGroup,
    *,
    max_children: int = DISPLAY_MAX_CHILDREN,
    max_depth: int | None = None,
    comments: bool = False,
    summaries: Mapping[str, str] | None = None,
) -> str:
    """Draw ``group`` and its subtree with box characters.

    Parameters
    ----------
    group
        The group to draw.
    max_children
        Children shown per group; the rest are summarised as ``... N more``.
    max_depth
        Deepest level drawn below ``group`` (None: all).
    comments
        Append each node's comment (first line, cut at 80 characters) after ``#``.
    summaries
        Full name -> text drawn after the node's name instead of its own summary (the
        ``pytraj`` command adds the types of per-run results, which leaves do not know
        without reading a stored value).
    """
    replaced = summaries or {}
    lines = [f"{group.full_name or group.name}/"]

    def walk(node: DrawnGroup, prefix: str, level: int) -> None:
        children = list(node.children.values())
        shown = children[:max_children]
        for position, child in enumerate(shown):
            last = position == len(shown) - 1 and len(children) <= max_children
            branch = "└── " if last else "├── "
            label = child.name + ("/" if child.is_group else "")
            summary = replaced.get(child.full_name) or _summary(child)
            line = f"{prefix}{branch}{label}" + (f"  {summary}" if summary else "")
            if comments and child.comment:
                first = child.comment.splitlines()[0] if child.comment.strip() else ""
                line += f"  # {first[:80]}{'...' if len(first) > 80 else ''}"
            lines.append(line)
            if child.is_group and (max_depth is None or level < max_depth):
                walk(child, prefix + ("    " if last else "│   "), level + 1)
        if len(children) > max_children:
            lines.append(f"{prefix}└── ... {len(children) - max_children} more")

    walk(group, "", 1)
    return "\n".join(lines)


def render_html(
    group: DrawnGroup, *, max_children: int = DISPLAY_MAX_CHILDREN, max_nodes: int = HTML_MAX_NODES
) -> str:
    """Return a collapsible HTML view of ``group`` for Jupyter (``_repr_html_``)."""
    budget = [max_nodes]

    def item(node: DrawnNode) -> str:
        budget[0] -= 1
        name = html.escape(node.name)
        summary = html.escape(_summary(node))
        comment = html.escape(node.comment)
        title = f' title="{comment}"' if comment else ""
        # Dimmed by opacity, not by a grey: readable on light and dark notebook themes.
        tail = f" <span style='opacity:0.7'>{summary}</span>" if summary else ""
        if not node.is_group:
            return f"<li{title}><code>{name}</code>{tail}</li>"
        inner = children(node)  # type: ignore[arg-type]  # is_group: node has children
        return f"<li{title}><details><summary><b>{name}/</b>{tail}</summary>{inner}</details></li>"

    def children(node: DrawnGroup) -> str:
        parts: list[str] = []
        kids = list(node.children.values())
        for child in kids[:max_children]:
            if budget[0] <= 0:
                parts.append("<li>... (truncated)</li>")
                break
            parts.append(item(child))
        if len(kids) > max_children:
            parts.append(f"<li>... {len(kids) - max_children} more</li>")
        return "<ul style='list-style:none;margin:0;padding-left:1.2em'>" + "".join(parts) + "</ul>"

    header = html.escape(repr(group))
    body = children(group)
    return (
        f"<div class='pytraj-tree'><details open><summary>{header}</summary>{body}</details></div>"
    )


def leaf_html(node: DrawnNode) -> str:
    """A leaf for Jupyter: its path, its one-line state and its comment."""
    name = html.escape(node.full_name or node.name)
    text = f"<div class='pytraj-leaf'><code>{name}</code> {html.escape(_summary(node))}"
    if node.comment:
        text += f" <span style='opacity:0.7'># {html.escape(node.comment)}</span>"
    return text + "</div>"
