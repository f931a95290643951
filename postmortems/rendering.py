"""Markdown → safe HTML. Rendered with markdown-it-py (CommonMark + tables), then sanitised by nh3.

Raw HTML in the Markdown is escaped by the renderer, and nh3 removes anything that would still run:
scripts, event-handler attributes, `javascript:` URLs, styles, iframes.
"""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt

from postmortems.models import SECTIONS

_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table").enable("strikethrough")

ALLOWED_TAGS = {
    "a", "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "strong", "em", "del", "s",
    "code", "pre", "blockquote", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "th": {"align"}, "td": {"align"}}


def render_markdown(text: str) -> str:
    """Sanitised HTML for one Markdown text; safe to mark_safe in a template."""
    html = _markdown.render(text or "")
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )


def render_sections(sections: dict[str, str]) -> dict[str, str]:
    return {name: render_markdown(sections.get(name, "")) for name in SECTIONS}
