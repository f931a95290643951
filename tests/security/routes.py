"""Every URL pattern of the project, from the resolver, with the HTTP methods its view answers."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver

PLACEHOLDER = "999999"
_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")
_CONVERTER = re.compile(r"<(?:\w+:)?(\w+)>")


@dataclass(frozen=True)
class Route:
    pattern: str  # the concatenated patterns, as the matrix names it
    callback: object

    @property
    def url(self) -> str:
        text = _GROUP.sub(PLACEHOLDER, self.pattern)
        text = _CONVERTER.sub(PLACEHOLDER, text)
        return "/" + text.replace("^", "").replace("$", "").replace("\\", "")

    @property
    def methods(self) -> list[str]:
        actions = getattr(self.callback, "actions", None)
        if actions:  # a DRF viewset route: {method: action}
            return sorted(method.upper() for method in actions if method != "head")
        view_class = getattr(self.callback, "view_class", None) or getattr(self.callback, "cls", None)
        if view_class is not None:
            return sorted(
                method.upper()
                for method in view_class.http_method_names
                if method not in {"options", "head"} and hasattr(view_class, method)
            )
        return ["GET"]


def _walk(patterns, prefix: str = ""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield Route(prefix + str(entry.pattern), entry.callback)


def all_routes() -> list[Route]:
    """Unique patterns, format-suffix duplicates of router routes left out (same view, same permissions)."""
    seen: dict[str, Route] = {}
    for route in _walk(get_resolver().url_patterns):
        if "(?P<format>" in route.pattern or "<drf_format_suffix" in route.pattern:
            continue
        seen.setdefault(route.pattern, route)
    return list(seen.values())


def api_routes() -> list[Route]:
    return [route for route in all_routes() if route.pattern.startswith("api/")]
