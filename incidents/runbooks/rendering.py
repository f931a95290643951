"""Runbook Markdown → safe HTML (markdown-it-py, then nh3), and the admin's diff between two versions.

Raw HTML in the Markdown is escaped by the renderer; nh3 then removes anything that could still run:
scripts, event-handler attributes, `javascript:` and `data:` URLs, styles, iframes.
"""

from __future__ import annotations

import difflib

import nh3
from markdown_it import MarkdownIt

_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table").enable("strikethrough")

ALLOWED_TAGS = {
    "a", "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "strong", "em", "del", "s",
    "code", "pre", "blockquote", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "th": {"align"}, "td": {"align"}}


def render_runbook(text: str) -> str:
    """Sanitised HTML of a runbook body; safe to mark_safe in a template."""
    return nh3.clean(
        _markdown.render(text or ""),
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )


def diff_html(*, old: str, new: str, old_label: str, new_label: str) -> str:
    """A side-by-side HTML table of two bodies (difflib escapes the text it shows)."""
    return difflib.HtmlDiff(wrapcolumn=90).make_table(
        (old or "").splitlines(), (new or "").splitlines(), old_label, new_label, context=True, numlines=3
    )
