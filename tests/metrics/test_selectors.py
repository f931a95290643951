"""Metric definitions of METRICS.md with hand-computed expected values, traps included."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from incidents.models import Incident
from metrics import selectors
from metrics.selectors import Month
from tests.incidents.factories import IncidentFactory, ServiceFactory, StatusUpdateFactory
from tests.oncall.factories import TeamFactory

BERLIN = ZoneInfo("Europe/Berlin")


def at(day, hour, minute=0, tz=UTC, month=3):
    return datetime(2026, month, day, hour, minute, tzinfo=tz)


def make(service, start, ttd=None, tta=None, ttm=None, ttr=None, **extra):
    """An incident whose durations (minutes) are given; detection at start + ttd, declared at detection."""
    detected = start + timedelta(minutes=ttd or 0)
    values = {"started_at": start, "detected_at": detected, "declared_at": detected}
    if tta is not None:
        values["acknowledged_at"] = detected + timedelta(minutes=tta)
    if ttm is not None:
        values["mitigated_at"] = start + timedelta(minutes=ttm)
    if ttr is not None:
        values["resolved_at"] = start + timedelta(minutes=ttr)
        values["status"] = Incident.Status.RESOLVED
    values.update(extra)
    return IncidentFactory(service=service, **values)


@pytest.fixture
def march(db):
    service = ServiceFactory(slug="checkout", team=TeamFactory(slug="pay", timezone="Europe/Berlin"))
    make(service, at(2, 10), ttd=5, tta=5, ttm=30, ttr=60, severity="P1")
    make(service, at(5, 10), ttd=1, tta=2, ttm=10, ttr=20, severity="P2")
    make(service, at(9, 10), ttd=10, tta=20, ttm=60, ttr=120, severity="P2")
    make(service, at(12, 10), ttd=0, ttm=40, ttr=40, severity="P3")  # never acknowledged
    make(service, at(20, 10), ttd=3, severity="P2", ref="INC-2026-OPEN")  # still open
    # traps: none of these count
    make(service, at(3, 10), ttd=1, tta=1, ttm=1, ttr=1, is_practice=True)
    make(service, at(4, 10), ttd=1, status="cancelled", closure_reason="false_positive", closed_at=at(4, 12))
    make(service, at(10, 10, month=2), ttd=1, tta=1, ttm=1, ttr=1)  # February
    return service


def test_month_bounds_in_the_report_zone():
    assert Month(2026, 3).bounds("Europe/Berlin") == (
        datetime(2026, 2, 28, 23, 0, tzinfo=UTC),
        datetime(2026, 3, 31, 22, 0, tzinfo=UTC),  # after spring-forward: UTC+2
    )
    assert Month(2026, 12).bounds("UTC")[1] == datetime(2027, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="YYYY-MM"):
        Month.parse("2026-13")


def test_monthly_metrics_durations_hand_computed(march):
    metrics = selectors.monthly_metrics(month=Month(2026, 3))

    assert metrics.incidents == 5
    assert metrics.previous_incidents == 1
    assert metrics.delta == 4
    assert metrics.delta_pct == 400.0
    assert metrics.open_at_month_end == ["INC-2026-OPEN"]
    ttr = metrics.durations["ttr"]
    # TTR 20, 40, 60, 120: median (40+60)/2, mean 60, p90 at rank 2.7 → 60 + 0.7·60
    assert (ttr.n, ttr.missing, ttr.median, ttr.mean, ttr.p90) == (4, 1, 50.0, 60.0, 102.0)
    assert ttr.low_sample is True
    tta = metrics.durations["tta"]
    # TTA 2, 5, 20: median 5, mean 9, p90 at rank 1.8 → 5 + 0.8·15
    assert (tta.n, tta.missing, tta.median, tta.mean, tta.p90) == (3, 2, 5.0, 9.0, 17.0)
    ttd = metrics.durations["ttd"]
    # TTD 5, 1, 10, 0, 3 → 0, 1, 3, 5, 10: median 3, mean 3.8, p90 at rank 3.6 → 5 + 0.6·5
    assert (ttd.n, ttd.missing, ttd.median, ttd.mean, ttd.p90, ttd.low_sample) == (5, 0, 3.0, 3.8, 8.0, False)
    ttm = metrics.durations["ttm"]
    assert (ttm.n, ttm.median) == (4, 35.0)


def test_monthly_metrics_by_severity(march):
    metrics = selectors.monthly_metrics(month=Month(2026, 3))
    assert {key: value["incidents"] for key, value in metrics.by_severity.items()} == {"P1": 1, "P2": 3, "P3": 1}
    assert metrics.by_severity["P2"]["ttr"]["median"] == 70.0  # 20 and 120
    assert metrics.by_service["checkout"]["incidents"] == 5
    assert metrics.by_team["pay"]["incidents"] == 5


def test_no_incidents_gives_empty_stats(db):
    metrics = selectors.monthly_metrics(month=Month(2026, 3))
    assert metrics.incidents == 0
    assert metrics.delta_pct is None
    assert metrics.durations["ttr"].median is None
    assert metrics.durations["ttr"].n == 0
    assert metrics.repeat_rate is None


def test_backfilled_start_does_not_move_an_incident_between_months(db):
    service = ServiceFactory()
    # declared on 1 March, impact began on 27 February (back-filled)
    IncidentFactory(
        service=service,
        started_at=at(27, 9, month=2),
        detected_at=at(1, 0, 30),
        declared_at=at(1, 0, 30),
        resolved_at=at(1, 1, 30),
        mitigated_at=at(1, 1, 0),
    )
    assert selectors.monthly_metrics(month=Month(2026, 2)).incidents == 0
    march = selectors.monthly_metrics(month=Month(2026, 3))
    assert march.incidents == 1
    # 27 Feb 09:00 → 28 Feb 09:00 (24 h) → 1 Mar 01:30 (16.5 h more; 2026 is no leap year): 2,430 min
    assert march.durations["ttr"].median == 2430.0


def test_team_report_uses_the_team_zone(db):
    team = TeamFactory(timezone="Europe/Berlin")
    service = ServiceFactory(team=team)
    # 31 March 22:30 UTC is 1 April 00:30 in Berlin
    IncidentFactory(service=service, declared_at=at(31, 22, 30), detected_at=at(31, 22, 30), started_at=at(31, 22))
    assert selectors.monthly_metrics(month=Month(2026, 3)).incidents == 1  # org report in UTC
    assert selectors.monthly_metrics(month=Month(2026, 3), team=team).incidents == 0
    assert selectors.monthly_metrics(month=Month(2026, 4), team=team).incidents == 1


def test_duration_across_dst_is_real_elapsed_time(db):
    service = ServiceFactory()
    # Berlin springs forward on 29 March 2026 at 02:00: 01:30 → 03:30 local is one real hour
    start = datetime(2026, 3, 29, 1, 30, tzinfo=BERLIN)
    end = datetime(2026, 3, 29, 3, 30, tzinfo=BERLIN)
    IncidentFactory(
        service=service, started_at=start, detected_at=start, declared_at=start, mitigated_at=end, resolved_at=end
    )
    assert selectors.monthly_metrics(month=Month(2026, 3)).durations["ttr"].median == 60.0


def test_repeat_incidents(db):
    checkout, search = ServiceFactory(), ServiceFactory()
    first = make(checkout, at(1, 10), ttd=1)
    make(checkout, at(25, 10, month=2), ttd=1)  # February, 4 days before `first`: makes `first` a repeat
    make(checkout, at(20, 10), ttd=1)  # 19 days after `first`: a repeat
    make(search, at(21, 10), ttd=1)  # other service, nothing before: not a repeat
    make(search, at(28, 10), ttd=1, repeat_of=first)  # linked: a repeat
    make(checkout, at(29, 10), ttd=1, is_practice=True)  # practice: neither counted nor a cause
    metrics = selectors.monthly_metrics(month=Month(2026, 3))
    assert metrics.incidents == 4
    assert metrics.repeats == 3
    assert metrics.repeat_rate == 0.75


def test_status_update_compliance(db):
    service = ServiceFactory()
    # P1: cadence 60 min. Declared 10:00, updates 10:50 and 12:10, resolved 12:30: one gap over 60 min
    late = make(service, at(2, 10), ttd=0, ttm=150, ttr=150, severity="P1")
    StatusUpdateFactory(incident=late, at=at(2, 10, 50))
    StatusUpdateFactory(incident=late, at=at(2, 12, 10))
    # P0: cadence 30 min. Updates every 20 minutes until resolved at 11:00: no gap
    good = make(service, at(3, 10), ttd=0, ttm=60, ttr=60, severity="P0")
    for minute in (20, 40):
        StatusUpdateFactory(incident=good, at=at(3, 10, minute))
    StatusUpdateFactory(incident=good, at=at(3, 11, 0))
    make(service, at(4, 10), ttd=0, ttr=600, ttm=600, severity="P3")  # no cadence: not counted
    compliance = selectors.monthly_metrics(month=Month(2026, 3)).status_updates
    assert compliance == {
        "incidents": 2,
        "overdue_gaps": 1,
        "incidents_with_overdue_gaps": 1,
        "compliance_rate": 50.0,
    }


def _queries(count):
    service = ServiceFactory()
    for day in range(count):
        make(service, at(1 + day % 28, 10), ttd=1, tta=2, ttm=3, ttr=4)
    with CaptureQueriesContext(connection) as queries:
        selectors.monthly_metrics(month=Month(2026, 3))
    return len(queries)


def test_monthly_metrics_query_count_is_constant(db):
    small = _queries(5)
    Incident.objects.all().delete()
    assert _queries(60) == small


def test_trend_counts_by_month_in_one_query(march):
    with CaptureQueriesContext(connection) as queries:
        rows = selectors.trend(months=3, end_month=Month(2026, 4))
    assert len(queries) == 1
    assert [row["month"] for row in rows] == ["2026-02", "2026-03", "2026-04"]
    assert [row["incidents"] for row in rows] == [1, 5, 0]
    assert rows[1]["by_severity"] == {"P0": 0, "P1": 1, "P2": 3, "P3": 1}
    assert rows[1]["ttr_median"] == 50.0


def test_declared_at_0020_local_on_the_first_counts_in_the_local_month(db):
    team = TeamFactory(timezone="Europe/Berlin")
    service = ServiceFactory(team=team)
    declared = datetime(2026, 3, 1, 0, 20, tzinfo=BERLIN)  # 28 February 23:20 UTC
    IncidentFactory(service=service, declared_at=declared, detected_at=declared, started_at=declared)
    assert selectors.monthly_metrics(month=Month(2026, 3), team=team).incidents == 1
    assert selectors.monthly_metrics(month=Month(2026, 2), team=team).incidents == 0
    assert selectors.monthly_metrics(month=Month(2026, 2)).incidents == 1  # the org report is in UTC


def test_open_incident_counts_in_frequency_but_not_in_ttr(db):
    service = ServiceFactory()
    make(service, at(3, 10), ttd=2, tta=1)  # acknowledged, never resolved
    metrics = selectors.monthly_metrics(month=Month(2026, 3))
    assert metrics.incidents == 1
    assert (metrics.durations["ttr"].n, metrics.durations["ttr"].missing) == (0, 1)
    assert metrics.durations["tta"].n == 1


def _bulk_queries(count):
    service = ServiceFactory()
    start = at(1, 0)
    Incident.objects.bulk_create(
        Incident(
            ref=f"BULK-{count}-{i}",
            title="bulk",
            severity="P2",
            status="resolved",
            service=service,
            started_at=start + timedelta(minutes=i),
            detected_at=start + timedelta(minutes=i + 1),
            declared_at=start + timedelta(minutes=i + 1),
            acknowledged_at=start + timedelta(minutes=i + 2),
            mitigated_at=start + timedelta(minutes=i + 3),
            resolved_at=start + timedelta(minutes=i + 4),
        )
        for i in range(count)
    )
    with CaptureQueriesContext(connection) as queries:
        metrics = selectors.report_data(month=Month(2026, 3))
    assert metrics["incidents"] == count
    return len(queries)


def test_monthly_computation_same_queries_for_100_and_10000_incidents(db):
    small = _bulk_queries(100)
    Incident.objects.all().delete()
    assert _bulk_queries(10_000) == small
