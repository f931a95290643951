"""Action-item and postmortem metrics of METRICS.md, hand-computed."""

from datetime import UTC, date, datetime, timedelta

import pytest

from metrics import sections
from metrics.selectors import Month
from tests.incidents.factories import IncidentFactory, ServiceFactory
from tests.oncall.factories import TeamFactory
from tests.postmortems.factories import ActionItemFactory, PostmortemFactory

OCT = Month(2026, 10)
OCT_END = datetime(2026, 11, 1, tzinfo=UTC)


def item(due, status="open", completed=None, team=None, **extra):
    values = {"due_on": due, "status": status, "completed_at": completed, "team": team}
    if status == "wont_do":
        values["wont_do_reason"] = "superseded"
    return ActionItemFactory(**values, **extra)


def test_action_items_section(db):
    item(date(2026, 10, 10), "done", datetime(2026, 10, 9, 23, 30, tzinfo=UTC))  # on time
    item(date(2026, 10, 10), "done", datetime(2026, 10, 11, 8, tzinfo=UTC))  # completed late
    item(date(2026, 10, 20))  # due, open: overdue at the end of October
    item(date(2026, 10, 25), "wont_do")  # not counted anywhere
    item(date(2026, 9, 15), "in_progress")  # due in September, still overdue at the end of October
    item(date(2026, 9, 20), "done", datetime(2026, 11, 3, tzinfo=UTC))  # was overdue at the end of October
    item(date(2026, 11, 5))  # not due yet

    data = sections.action_items_section(month=OCT, team=None, tz="UTC", end=OCT_END)

    assert (data["due"], data["completed"], data["on_time"]) == (3, 2, 1)
    assert data["on_time_rate"] == 33.3
    assert data["completion_rate"] == 66.7
    assert data["overdue"] == 3


def test_action_item_completion_is_a_local_date(db):
    team = TeamFactory(timezone="Europe/Berlin")
    # completed at 22:30 UTC on the due date: already the next day in Berlin (CEST, UTC+2)
    item(date(2026, 10, 10), "done", datetime(2026, 10, 10, 22, 30, tzinfo=UTC), team=team)
    assert sections.action_items_section(month=OCT, team=None, tz="UTC", end=OCT_END)["on_time"] == 1
    assert sections.action_items_section(month=OCT, team=team, tz="Europe/Berlin", end=OCT_END)["on_time"] == 0


def test_action_items_overdue_by_owner(db):
    overdue = item(date(2026, 10, 2))
    item(date(2026, 10, 3), owner=overdue.owner)
    data = sections.action_items_section(month=OCT, team=None, tz="UTC", end=OCT_END)
    assert data["overdue_by_owner"] == [{"owner": overdue.owner.username, "team": "—", "count": 2}]


def resolved(service, severity, resolved_at):
    start = resolved_at - timedelta(hours=2)
    return IncidentFactory(
        service=service,
        severity=severity,
        status="resolved",
        started_at=start,
        detected_at=start,
        declared_at=start,
        mitigated_at=resolved_at,
        resolved_at=resolved_at,
    )


@pytest.fixture
def october_postmortems(db):
    service = ServiceFactory(team=TeamFactory(timezone="Europe/Berlin"))
    # P1 resolved 5 Oct: due at the end of 12 Oct in Berlin = 12 Oct 22:00 UTC
    x = resolved(service, "P1", datetime(2026, 10, 5, 10, tzinfo=UTC))
    PostmortemFactory(incidents=[x], status="published", published_at=datetime(2026, 10, 12, 21, 59, tzinfo=UTC))
    y = resolved(service, "P2", datetime(2026, 10, 6, 10, tzinfo=UTC))  # due 13 Oct 22:00 UTC
    PostmortemFactory(incidents=[y], status="published", published_at=datetime(2026, 10, 13, 22, 0, tzinfo=UTC))
    z = resolved(service, "P1", datetime(2026, 10, 7, 10, tzinfo=UTC))  # due 14 Oct 22:00 UTC, never published
    PostmortemFactory(incidents=[z])
    resolved(service, "P3", datetime(2026, 10, 8, 10, tzinfo=UTC))  # P3: no postmortem required
    IncidentFactory(service=service, severity="P1", declared_at=datetime(2026, 10, 9, tzinfo=UTC))  # unresolved
    return service


def test_postmortem_timeliness(october_postmortems):
    start = datetime(2026, 10, 1, tzinfo=UTC)
    data = sections.postmortems_section(team=None, start=start, end=OCT_END, now=datetime(2026, 11, 1, tzinfo=UTC))
    assert (data["required"], data["on_time"], data["late"], data["overdue_unpublished"]) == (3, 1, 1, 1)
    assert len(data["published"]) == 2


def test_postmortem_not_yet_due_is_not_overdue(october_postmortems):
    start = datetime(2026, 10, 1, tzinfo=UTC)
    data = sections.postmortems_section(team=None, start=start, end=OCT_END, now=datetime(2026, 10, 14, 21, tzinfo=UTC))
    assert data["overdue_unpublished"] == 0


def _report_queries(count):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from metrics.selectors import report_data

    service = ServiceFactory()
    for day in range(count):
        incident = resolved(service, "P1", datetime(2026, 10, 1 + day % 28, 12, tzinfo=UTC))
        PostmortemFactory(incidents=[incident], status="published", published_at=datetime(2026, 10, 29, tzinfo=UTC))
        item(date(2026, 10, 1 + day % 28))
    with CaptureQueriesContext(connection) as queries:
        data = report_data(month=OCT)
    assert data["incidents"] == count
    return len(queries)


def test_report_data_query_count_is_constant(db):
    small = _report_queries(3)
    from incidents.models import Incident
    from postmortems.models import ActionItem, Postmortem

    ActionItem.objects.all().delete()
    Postmortem.objects.all().delete()
    Incident.objects.all().delete()
    assert _report_queries(30) == small


def test_alert_noise_and_alerts_per_incident(db):
    from incidents.alerting.services import integration_create
    from incidents.models import Alert

    service = ServiceFactory()
    integration, _ = integration_create(service=service, kind="generic")
    real = resolved(service, "P2", datetime(2026, 10, 3, 10, tzinfo=UTC))
    resolved(service, "P2", datetime(2026, 10, 4, 10, tzinfo=UTC))
    practice = resolved(service, "P2", datetime(2026, 10, 5, 10, tzinfo=UTC))
    practice.is_practice = True
    practice.save()
    at = datetime(2026, 10, 3, 9, tzinfo=UTC)

    def alert(n, **extra):
        return Alert.objects.create(
            integration=integration,
            service=service,
            fingerprint=f"a{n}",
            group_key=f"g{n}",
            starts_at=at,
            received_at=at,
            last_received_at=at,
            **extra,
        )

    alert(1, incident=real)  # led to an incident
    alert(2, actionable=False, suppressed="informational")  # informational: noise
    alert(3, suppressed="flap")  # resolved within the flap delay: noise
    alert(4, suppressed="maintenance")  # during maintenance: stored, actionable, not noise
    alert(5, incident=practice)  # practice: left out
    data = sections.alerts_section(team=None, start=datetime(2026, 10, 1, tzinfo=UTC), end=OCT_END, incidents=2)
    assert data == {"total": 4, "noise": 2, "noise_pct": 50.0, "per_incident": 2.0}
    other = sections.alerts_section(
        team=TeamFactory(), start=datetime(2026, 10, 1, tzinfo=UTC), end=OCT_END, incidents=0
    )
    assert other == {"total": 0, "noise": 0, "noise_pct": None, "per_incident": None}
    mine = sections.alerts_section(team=service.team, start=datetime(2026, 10, 1, tzinfo=UTC), end=OCT_END, incidents=2)
    assert mine == data


def test_noisiest_alerts_of_a_team_are_its_own_even_when_others_are_noisier(db):
    from incidents.alerting.services import integration_create
    from incidents.models import Alert

    at = datetime(2026, 10, 3, 9, tzinfo=UTC)
    quiet, loud = ServiceFactory(), ServiceFactory()
    n = 0
    for service, names in ((quiet, ["DiskFull"]), (loud, [f"Loud{k}" for k in range(60)])):
        integration, _ = integration_create(service=service, kind="generic")
        for name in names:
            n += 1
            Alert.objects.create(
                integration=integration, service=service, fingerprint=f"f{n}", group_key=name,
                labels={"alertname": name}, starts_at=at, received_at=at, last_received_at=at,
                repeat_count=100 if service == loud else 2,
            )  # fmt: skip

    start = datetime(2026, 10, 1, tzinfo=UTC)
    everyone = sections.noisiest_alerts(team=None, start=start, end=OCT_END)
    team = sections.noisiest_alerts(team=quiet.team, start=start, end=OCT_END)

    assert len(everyone) == 5
    assert {row["service"] for row in everyone} == {loud.name}
    assert team == [
        {"integration": "generic", "service": quiet.name, "alertname": "DiskFull", "received": 2, "without_incident": 1}
    ]


def test_action_item_burndown_matches_its_definition_on_month_boundaries(db):
    """Items created, completed and due exactly on month ends (in the report's time zone), and at random, counted
    as the definition says: open = created before the end and not completed before it; overdue = open and due
    before the end's date."""
    import random
    from zoneinfo import ZoneInfo

    from postmortems.models import ActionItem

    tz = "Europe/Berlin"
    zone = ZoneInfo(tz)
    ends = []
    cursor = OCT
    for _ in range(4):
        ends.append(cursor.bounds(tz)[1])
        cursor = cursor.previous()
    ends = ends[::-1]
    rng = random.Random(8)
    times = [*ends, *(end - timedelta(microseconds=1) for end in ends)]
    times += [ends[0] - timedelta(days=40) + timedelta(hours=rng.randrange(0, 24 * 160)) for _ in range(30)]
    specs = []
    for n in range(60):
        created = rng.choice(times)
        completed = rng.choice([None, *[t for t in times if t >= created]])
        due = rng.choice([None, *{t.astimezone(zone).date() for t in times}])
        status = "wont_do" if n % 13 == 0 else ("done" if completed else "open")
        if status == "wont_do":
            completed = None
        pk = item(due, status, completed).pk
        ActionItem.objects.filter(pk=pk).update(created_at=created)
        specs.append((created, completed, due, status))

    rows = sections.action_item_burndown(month=OCT, team=None, tz=tz, months=4)

    expected = []
    for end in ends:
        open_items = [(c, d, u) for c, d, u, s in specs if s != "wont_do" and c < end and (d is None or d >= end)]
        overdue = [u for _, _, u in open_items if u is not None and u < end.astimezone(zone).date()]
        expected.append((len(open_items), len(overdue)))
    assert [(row["open"], row["overdue"]) for row in rows] == expected
    assert any(count for count, _ in expected)
    assert any(count for _, count in expected)


def test_action_item_burndown(db):
    from postmortems.models import ActionItem

    a = item(date(2026, 9, 10))  # open since before September's end, overdue from 10 September
    b = item(date(2026, 10, 20), "done", datetime(2026, 10, 5, tzinfo=UTC))  # closed in October
    item(date(2026, 10, 25), "wont_do")  # never counted
    ActionItem.objects.filter(pk__in=[a.pk, b.pk]).update(created_at=datetime(2026, 8, 20, tzinfo=UTC))
    rows = sections.action_item_burndown(month=OCT, team=None, tz="UTC", months=3)
    assert rows == [
        {"month": "2026-08", "open": 2, "overdue": 0},
        {"month": "2026-09", "open": 2, "overdue": 1},
        {"month": "2026-10", "open": 1, "overdue": 1},
    ]
