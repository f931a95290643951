import csv
import io

import pytest
from django.core.management import CommandError, call_command

from incidents.models import Incident, IncidentEvent
from incidents.services import next_ref
from incidents.services.importing import COLUMNS
from tests.incidents.factories import ServiceFactory

GOOD = {
    "ref": "",
    "title": "Payments failing",
    "severity": "P1",
    "service": "checkout",
    "started_at": "2025-03-30T00:50:00+01:00",
    "detected_at": "2025-03-30T01:05:00+01:00",
    "declared_at": "2025-03-30T03:10:00+02:00",
    "acknowledged_at": "2025-03-30T03:15:00+02:00",
    "mitigated_at": "2025-03-30T03:40:00+02:00",
    "resolved_at": "2025-03-30T04:00:00+02:00",
    "closed_at": "2025-04-02T10:00:00Z",
    "is_practice": "false",
    "closure_reason": "",
}


def write_csv(tmp_path, rows, columns=COLUMNS):
    path = tmp_path / "history.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_import_incidents_keeps_every_timestamp(db, tmp_path):
    ServiceFactory(slug="checkout")
    rows = [
        GOOD,
        {
            **GOOD,
            "ref": "INC-2025-40",
            "title": "Open one",
            "acknowledged_at": "",
            "mitigated_at": "",
            "resolved_at": "",
            "closed_at": "",
        },
    ]
    out = io.StringIO()
    call_command("import_incidents", str(write_csv(tmp_path, rows)), stdout=out)

    assert "Imported 2 incident(s)" in out.getvalue()
    closed = Incident.objects.get(title="Payments failing")
    assert closed.status == "closed"
    assert closed.source == "import"
    assert closed.declared_at.isoformat() == "2025-03-30T01:10:00+00:00"  # kept, converted to UTC
    assert closed.started_at.isoformat() == "2025-03-29T23:50:00+00:00"
    kinds = list(closed.events.order_by("at").values_list("kind", flat=True))
    assert kinds == ["imported", "acknowledged", "mitigated", "resolved", "closed"]
    assert Incident.objects.get(ref="INC-2025-40").status == "triggered"
    assert closed.ref == "INC-2025-41"  # numbering continues after the imported INC-2025-40
    assert next_ref(year=2025) == "INC-2025-42"


def test_import_incidents_with_one_bad_row_imports_nothing_and_names_it(db, tmp_path):
    ServiceFactory(slug="checkout")
    rows = [GOOD, GOOD, {**GOOD, "severity": "P7"}, {**GOOD, "detected_at": "2025-03-30T00:10:00+01:00"}]
    err = io.StringIO()
    with pytest.raises(CommandError, match="2 error"):
        call_command("import_incidents", str(write_csv(tmp_path, rows)), stderr=err)

    assert "line 4, column severity: 'P7' is not one of P0, P1, P2, P3" in err.getvalue()
    assert "line 5, column detected_at" in err.getvalue()
    assert Incident.objects.count() == 0
    assert IncidentEvent.objects.count() == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"declared_at": "2025-03-30T03:10:00"}, "column declared_at: '2025-03-30T03:10:00' has no UTC offset"),
        ({"started_at": "soon"}, "column started_at: 'soon' is not an ISO 8601 timestamp"),
        ({"service": "nope"}, "column service: no service with slug 'nope'"),
        ({"is_practice": "maybe"}, "column is_practice"),
        ({"closure_reason": "duplicate"}, "column duplicate_of"),
        ({"title": ""}, "column title: required"),
        ({"resolved_at": "", "mitigated_at": ""}, "column resolved_at: a closed incident needs resolved_at"),
    ],
)
def test_import_incidents_validation_messages(db, tmp_path, change, message):
    ServiceFactory(slug="checkout")
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("import_incidents", str(write_csv(tmp_path, [{**GOOD, **change}])), stderr=err)
    assert f"line 2, {message}" in err.getvalue()
    assert Incident.objects.count() == 0


def test_import_incidents_duplicates_and_cancelled(db, tmp_path):
    ServiceFactory(slug="checkout")
    rows = [
        {**GOOD, "ref": "OLD-1"},
        {**GOOD, "ref": "OLD-2", "closure_reason": "duplicate", "duplicate_of": "OLD-1", "closed_at": ""},
    ]
    call_command("import_incidents", str(write_csv(tmp_path, rows, [*COLUMNS, "duplicate_of"])), stdout=io.StringIO())
    duplicate = Incident.objects.get(ref="OLD-2")
    assert duplicate.status == "cancelled"
    assert duplicate.duplicate_of.ref == "OLD-1"
    assert duplicate.closed_at is not None


def test_import_incidents_refuses_existing_ref(db, tmp_path):
    ServiceFactory(slug="checkout")
    call_command("import_incidents", str(write_csv(tmp_path, [{**GOOD, "ref": "X-1"}])), stdout=io.StringIO())
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("import_incidents", str(write_csv(tmp_path, [{**GOOD, "ref": "X-1"}])), stderr=err)
    assert "line 2, column ref: X-1 already exists" in err.getvalue()
    assert Incident.objects.count() == 1


def test_import_incidents_missing_column(db, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("title,severity\nx,P1\n")
    with pytest.raises(CommandError, match="missing column"):
        call_command("import_incidents", str(path))
