import csv
import io
from datetime import UTC, date, datetime, timedelta

from oncall import selectors, services
from oncall.models import Notification, Rotation

DAILY = {"unit": Rotation.Unit.DAILY, "handoff_weekday": None, "timezone": "Europe/Berlin"}


def test_fairness_report_hours_slots_nights_and_spread(make_rotation, now, django_assert_max_num_queries):
    rotation = make_rotation(2, **DAILY)
    services.rotation_generate(rotation=rotation)
    first = rotation.shifts.get(period__contains=now)
    start = first.period.upper
    end = start + timedelta(days=4)  # four whole daily slots: two each
    Notification.objects.create(dedupe_key="page-1", user=first.user, subject="page", payload={"kind": "page"})
    with django_assert_max_num_queries(5):
        report = selectors.fairness_report(rotation=rotation, start=start, end=end)
    rows = {r.username: r for r in report.members}
    assert [r.slots for r in rows.values()] == [2, 2]
    assert all(r.real_hours == 48 for r in rows.values())
    assert all(r.night_hours == 16 for r in rows.values())
    assert report.spread["slots"] == 0
    assert report.spread["real_hours"] == 0
    assert all(r.pages == 0 for r in rows.values())  # the page came before the window
    during = selectors.fairness_report(rotation=rotation, start=first.period.lower, end=first.period.upper)
    assert {r.username: r.pages for r in during.members}[first.user.username] == 1


def test_fairness_nominal_hours_of_a_fall_back_week_are_168(make_rotation):
    rotation = make_rotation(1, anchor_date=date(2026, 10, 5))
    services.rotation_generate(rotation=rotation, now=datetime(2026, 10, 19, 8, tzinfo=UTC))
    week = rotation.shifts.get(period__contains=datetime(2026, 10, 22, tzinfo=UTC))
    report = selectors.fairness_report(rotation=rotation, start=week.period.lower, end=week.period.upper)
    [row] = report.members
    assert row.real_hours == 169
    assert row.nominal_hours == 168


def test_fairness_weighted_hours_count_weekends(make_rotation, now):
    rotation = make_rotation(1, **DAILY)
    services.rotation_generate(rotation=rotation)
    saturday = datetime(2026, 6, 13, 9, tzinfo=UTC) - timedelta(hours=2)  # 09:00 Berlin
    report = selectors.fairness_report(rotation=rotation, start=saturday, end=saturday + timedelta(hours=10))
    assert report.members[0].weighted_hours == 15


def test_fairness_api_json_and_csv(manager_api, make_rotation, now):
    rotation = make_rotation(2, **DAILY)
    services.rotation_generate(rotation=rotation)
    params = {"start": now.isoformat(), "end": (now + timedelta(days=14)).isoformat()}
    body = manager_api.get(f"/api/v1/rotations/{rotation.pk}/fairness/", params).json()
    assert len(body["members"]) == 2
    assert "weighted_hours" in body["spread"]
    response = manager_api.get(f"/api/v1/rotations/{rotation.pk}/fairness/", {**params, "export": "csv"})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][0] == "username"
    assert rows[-1][0] == "spread"
    assert {r[0] for r in rows[1:-1]} == {m["username"] for m in body["members"]}


def test_fairness_admin_page_and_csv(client, manager, make_rotation, now):
    client.force_login(manager)
    rotation = make_rotation(2, **DAILY)
    services.rotation_generate(rotation=rotation)
    page = client.get(f"/admin/oncall/rotation/{rotation.pk}/fairness/")
    assert page.status_code == 200
    assert b"Weighted hours" in page.content
    exported = client.get(f"/admin/oncall/rotation/{rotation.pk}/fairness/", {"export": "csv"})
    assert exported["Content-Type"].startswith("text/csv")
