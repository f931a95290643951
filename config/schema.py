"""The OpenAPI schema class: drf-spectacular's, plus the error responses of our error format.

A separate module from config/api.py, which DRF's settings import before drf-spectacular can load.
"""

from __future__ import annotations

from drf_spectacular import openapi
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


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's schema plus the error responses every operation can give, in our error format.

    Without them a client (or schemathesis) sees a documented 200 only and cannot rely on the 4xx shape.
    """

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
