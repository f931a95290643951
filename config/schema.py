"""The OpenAPI schema class: drf-spectacular's, plus the error responses of our error format.

A separate module from config/api.py, which DRF's settings import before drf-spectacular can load.
"""

from __future__ import annotations

from drf_spectacular import openapi
from drf_spectacular.plumbing import get_doc
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    """The body of every API error (see exception_handler)."""

    code = serializers.CharField()
    detail = serializers.CharField()
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


ERROR_DESCRIPTIONS = {
    "400": "Invalid input; `errors` names the field.",
    "401": "Not signed in (token authentication).",
    "403": "Not signed in, or not allowed.",
    "404": "Not found.",
    "409": "Refused by a business rule (for example an illegal transition).",
}


APPS = ("incidents", "oncall", "postmortems", "metrics")  # the tags, one per app (SPECTACULAR_SETTINGS["TAGS"])

CRUD_SUMMARIES = {
    "list": "List {plural}",
    "retrieve": "Get {a} {name}",
    "create": "Create {a} {name}",
    "update": "Replace {a} {name}",
    "partial_update": "Change {a} {name}",
    "destroy": "Delete {a} {name}",
}


def _first_line(doc: str) -> str:
    return doc.strip().split("\n\n")[0].replace("\n", " ").strip().rstrip(".") if doc else ""


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's schema plus the error responses every operation can give, in our error format, one tag
    per app and a one-line summary per operation.

    Without the errors a client (or schemathesis) sees a documented 200 only and cannot rely on the 4xx shape.
    Summaries: the first line of the action's (or HTTP method's) docstring; for the standard actions of a
    viewset, "List rotations", "Get an incident", ...; else the first line of the view's docstring.
    """

    def get_tags(self):
        app = type(self.view).__module__.split(".")[0]
        return [app] if app in APPS else super().get_tags()

    def _handler_doc(self) -> str:
        action = getattr(self.view, "action", None)
        handler = getattr(self.view, action or self.method.lower(), None)
        if handler is None or getattr(handler, "__module__", "").split(".")[0] not in APPS:
            return ""  # DRF's own list/create/... say nothing useful
        return get_doc(handler)

    def get_summary(self):
        summary = _first_line(self._handler_doc())
        action = getattr(self.view, "action", None)
        if not summary and action in CRUD_SUMMARIES:
            summary = self._crud_summary(action)
        if not summary and action is None:  # an APIView: its docstring describes its one job
            summary = _first_line(get_doc(type(self.view)))
        return summary or None

    def get_description(self):
        doc = self._handler_doc()
        rest = doc.strip().split("\n\n", 1)[1] if "\n\n" in doc.strip() else ""
        return rest or get_doc(type(self.view))

    def _crud_summary(self, action: str) -> str:
        try:
            meta = self.view.get_serializer_class().Meta.model._meta
        except AttributeError:
            return ""
        name, plural = str(meta.verbose_name), str(meta.verbose_name_plural)
        article = "an" if name[:1].lower() in "aeiou" else "a"
        return CRUD_SUMMARIES[action].format(a=article, name=name, plural=plural)

    def get_request_serializer(self):
        # an action declared with takes_body=False (config.api.StrictBodyMixin) documents no request body
        if not getattr(self.view, "takes_body", True):
            return None
        return super().get_request_serializer()

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        codes = ["400", "401", "403"]
        if "{" in self.path:
            codes.append("404")
        if self.method in {"POST", "PUT", "PATCH", "DELETE"}:
            codes.append("409")
        for code in codes:
            if code not in responses:
                error = OpenApiResponse(ErrorSerializer, description=ERROR_DESCRIPTIONS[code])
                responses[code] = self._get_response_for_code(error, code, direction=direction)
        return responses


TIME_PATTERN = r"^\d{2}:\d{2}(:\d{2}(\.\d+)?)?$"


def describe_plain_times(result, generator, request, public):
    """DRF writes times of day as "09:00:00", without the offset that OpenAPI's `format: time` demands."""

    def walk(node):
        if isinstance(node, dict):
            if node.get("format") == "time":
                node.pop("format")
                node["pattern"] = TIME_PATTERN
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(result)
    return result
