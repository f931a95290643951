"""The OpenAPI schema describes what the API answers: nullable where the data can be null, blank where it can be
blank, one tag per app and a one-line summary per operation; and query parameters parsed by hand answer junk
with a 400 naming the parameter (the schemathesis run, tests/fuzz/test_api_schema.py, found these on seeded data).
"""

from __future__ import annotations

import importlib

import pytest
from django.db import models
from drf_spectacular.generators import SchemaGenerator
from rest_framework import serializers

from config.schema import APPS

API_MODULES = [
    "incidents.api",
    "incidents.response_api",
    "incidents.alerting.api",
    "oncall.api",
    "postmortems.api",
    "metrics.api",
]


@pytest.fixture(scope="module")
def schema():
    return SchemaGenerator().get_schema(request=None, public=True)


def _serializers():
    for name in API_MODULES:
        module = importlib.import_module(name)
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, serializers.ModelSerializer) and value.__module__ == name:
                yield value


def _nullable_through(model, source_attrs) -> bool:
    """Whether following `source_attrs` from `model` can meet a null: a nullable column or foreign key."""
    for attr in source_attrs:
        try:
            field = model._meta.get_field(attr)
        except Exception:  # noqa: BLE001 - a property or method: not decidable here
            return False
        if field.one_to_many or field.many_to_many:
            return False
        if field.null:
            return True
        if not field.is_relation:
            return False
        model = field.related_model
    return False


def test_every_field_that_can_be_null_is_nullable_in_the_schema(schema):
    components = schema["components"]["schemas"]
    wrong = []
    for serializer_class in _serializers():
        model = serializer_class.Meta.model
        for name, field in serializer_class().fields.items():
            if field.write_only or isinstance(field, serializers.SerializerMethodField):
                continue
            if not _nullable_through(model, field.source_attrs):
                continue
            component = components.get(serializer_class.__name__.removesuffix("Serializer"))
            documented = component["properties"][name].get("nullable") if component else field.allow_null
            if not documented:
                wrong.append(f"{serializer_class.__name__}.{name} ({field.source})")
    assert wrong == []


def test_blank_urls_addresses_and_choices_are_allowed_by_the_schema(schema):
    """A read-only ModelSerializer field loses the model field's allow_blank: the schema then refused ""."""
    components = schema["components"]["schemas"]
    blank_string = {"type": "string", "maxLength": 0}
    blank_choice = {"$ref": "#/components/schemas/BlankEnum"}
    checked, wrong = 0, []
    for serializer_class in _serializers():
        component = components.get(serializer_class.__name__.removesuffix("Serializer"))
        for name, field in serializer_class().fields.items():
            model_field = _model_field(serializer_class.Meta.model, field.source_attrs)
            if component is None or field.write_only or not getattr(model_field, "blank", False):
                continue
            if model_field.choices:
                expected = blank_choice
            elif isinstance(model_field, models.URLField | models.EmailField):
                expected = blank_string
            else:
                continue
            checked += 1
            if expected not in component["properties"][name].get("oneOf", []):
                wrong.append(f"{serializer_class.__name__}.{name}")
    assert wrong == []
    assert checked >= 4  # closure_reason, alert severity and suppressed, tracker_url


def _model_field(model, source_attrs):
    field = None
    for attr in source_attrs:
        try:
            field = model._meta.get_field(attr)
        except Exception:  # noqa: BLE001 - a property or method
            return None
        model = field.related_model
    return field


def test_every_operation_has_its_apps_tag_and_a_one_line_summary(schema):
    summaries = {}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            label = f"{method.upper()} {path}"
            assert operation["tags"] in [[app] for app in APPS], label
            summary = operation.get("summary", "")
            assert summary, label
            assert "\n" not in summary, label
            assert len(summary) <= 90, label
            summaries.setdefault(summary, []).append(label)
    assert {summary: labels for summary, labels in summaries.items() if len(labels) > 1} == {}
    assert [tag["name"] for tag in schema["tags"]] == list(APPS)


def test_operations_that_create_document_201(schema):
    member = schema["paths"]["/api/v1/rotations/{id}/members/"]["post"]["responses"]
    assert "201" in member
    assert "200" not in member


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/v1/shifts/?start=null&start=null", "start"),
        ("/api/v1/shifts/?start=2026-13-45T00:00:00Z", "start"),
        ("/api/v1/shifts/?end=2026-03-01T09:00:00", "end"),  # no zone
        ("/api/v1/oncall/?at=null", "at"),
        ("/api/v1/oncall/?team=%C2%B2", "team"),  # "²" is a digit to str.isdigit, not to int()
        ("/api/v1/oncall/?team=99999999999999999999", "team"),
        ("/api/v1/runbooks/stale/?team=x", "team"),
        ("/api/v1/rotations/1/fairness/?start=null", "start"),
    ],
)
def test_junk_query_parameters_are_a_400_naming_them(responder_api, url, field):
    from tests.oncall.factories import RotationFactory

    RotationFactory(pk=1)
    response = responder_api.get(url)
    assert response.status_code == 400, response.content
    assert list(response.json()["errors"]) == [field]


def test_a_value_the_database_cannot_hold_is_a_400_without_its_message(responder_api, db):
    # PostgreSQL holds offsets up to ±15:59; Python's datetime takes +20:00
    response = responder_api.get("/api/v1/incidents/", {"declared_after": "2026-01-01T00:00:00+20:00"})
    assert response.status_code == 400
    assert response.json() == {
        "code": "invalid",
        "detail": "A value is out of range.",
        "errors": {"non_field_errors": ["A value is out of range."]},
    }


def test_anonymous_visitors_of_the_docs_go_to_the_login_page_and_tools_get_403(client, db):
    docs = client.get("/api/docs/")
    assert docs.status_code == 302
    assert docs["Location"] == "/admin/login/?next=/api/docs/"
    schema = client.get("/api/schema/")
    assert schema.status_code == 403
    assert b"not_authenticated" in schema.content
