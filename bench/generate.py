"""Data generator for the benchmarks: realistic shapes, loaded with COPY (psycopg 3 `cursor.copy`).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/firebreak_bench python -m bench.generate   # BENCH_SCALE=small
    BENCH_SCALE=1m python -m bench.generate

It REPLACES the data of the target database (TRUNCATE of every app table except severity policies), so it
refuses to run unless the database name contains "bench" (or --force). Reference data (40 teams, 200
services, 2,000 users, 100 rotations with a year of shifts, escalation policies, integrations) is the same
at every scale; incidents and everything hanging off them scale with BENCH_SCALE.

Invariants kept: the timestamp-order checks of incidents, unique refs (INC-<year>-<n>, RefCounter updated),
one firing alert per (integration, fingerprint), non-overlapping shifts per rotation, primary and secondary
rotations of a team with disjoint members (the exclusion constraint), done ⇔ completed_at on action items.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import random
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
os.environ.setdefault("DJANGO_DEBUG", "true")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Model  # noqa: E402

from incidents.alerting.selectors import key_digest  # noqa: E402
from incidents.models import (  # noqa: E402
    Alert,
    Incident,
    IncidentEvent,
    Integration,
    RefCounter,
    Service,
    StatusUpdate,
)
from oncall.models import (  # noqa: E402
    EscalationPolicy,
    EscalationStep,
    EscalationTarget,
    Rotation,
    RotationMember,
    Shift,
    Team,
    TeamMembership,
)
from postmortems.models import ActionItem, ContributingFactor, Postmortem  # noqa: E402

User = get_user_model()


@dataclass(frozen=True)
class Scale:
    name: str
    incidents: int
    alerts: int
    postmortems: int
    action_items: int
    events_per_incident: float  # average timeline rows, the lifecycle ones included


SCALES = {
    "tiny": Scale("tiny", 2_000, 10_000, 200, 600, 5),
    "small": Scale("small", 20_000, 100_000, 2_000, 6_000, 5),
    "100k": Scale("100k", 100_000, 500_000, 10_000, 30_000, 5),
    "1m": Scale("1m", 1_000_000, 5_000_000, 100_000, 300_000, 5),
}
TEAMS, SERVICES, USERS, ROTATIONS = 40, 200, 2_000, 100
NOISE_FP_BASE = 10**12  # fingerprints of alerts without an incident (those of incidents count from 1)
YEARS = 5
TIME_ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo", "Europe/London", "America/Los_Angeles"]
SEVERITIES = [("P0", 0.02), ("P1", 0.10), ("P2", 0.30), ("P3", 0.58)]
ALERTNAMES = [
    "HighErrorRate", "HighLatency", "InstanceDown", "DiskFull", "CertificateExpiry", "QueueBacklog",
    "MemoryPressure", "ReplicationLag", "PodCrashLooping", "5xxBurst", "SaturationCPU", "TargetMissing",
]  # fmt: skip
WORDS = [
    "payment",
    "checkout",
    "api",
    "gateway",
    "database",
    "replica",
    "cache",
    "queue",
    "worker",
    "login",
    "search",
    "billing",
    "dns",
    "tls",
    "cdn",
]
BENCH_ADMIN = "bench-admin"


# --- progress and COPY ------------------------------------------------------------------------------------------


class Progress:
    """A one-line progress bar on stderr (no dependency): label, bar, count, rows/s, elapsed."""

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total, self.count = label, max(total, 1), 0
        self.start = self.last = time.perf_counter()
        self.tty = sys.stderr.isatty()

    def advance(self, n: int = 1) -> None:
        self.count += n
        now = time.perf_counter()
        if now - self.last >= (0.2 if self.tty else 10) or self.count >= self.total:
            self.last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        done = min(self.count / self.total, 1.0)
        bar = "#" * int(done * 30)
        rate = self.count / max(now - self.start, 1e-9)
        line = f"{self.label:<22} [{bar:<30}] {self.count:>10,}/{self.total:,} {rate:>9,.0f}/s {now - self.start:6.1f}s"
        sys.stderr.write(("\r" if self.tty else "") + line + ("" if self.tty else "\n"))
        sys.stderr.flush()

    def close(self) -> float:
        elapsed = time.perf_counter() - self.start
        self._draw(time.perf_counter())
        if self.tty:
            sys.stderr.write("\n")
        return elapsed


def _column_defaults(model: type[Model], given: list[str]) -> tuple[list[str], list]:
    """The NOT NULL columns not given, with their Django defaults (auto_now fields: now)."""
    now = datetime.now(UTC)
    columns, values = [], []
    for field in model._meta.concrete_fields:
        if field.name in given or field.attname in given or field.primary_key or field.null:
            continue
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            value = now
        else:
            value = field.get_default()
        if field.get_internal_type() == "JSONField":
            value = json.dumps(value)
        columns.append(field.column)
        values.append(value)
    return columns, values


def copy_rows(model: type[Model], fields: list[str], rows: Iterable[tuple], total: int, label: str = "") -> int:
    """COPY rows (tuples in the order of `fields`, attnames or names) into the model's table."""
    columns = [model._meta.get_field(name).column for name in fields]
    extra_columns, extra_values = _column_defaults(model, fields)
    extra = tuple(extra_values)
    table = model._meta.db_table
    quoted = ", ".join(f'"{c}"' for c in columns + extra_columns)
    statement = f'COPY "{table}" ({quoted}) FROM STDIN'
    progress = Progress(label or table, total)
    n = 0
    with connection.cursor() as django_cursor:
        cursor = django_cursor.cursor  # the psycopg 3 cursor
        with cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row + extra)
                n += 1
                if n % 5000 == 0:
                    progress.advance(5000)
    progress.count = n
    elapsed = progress.close()
    TIMINGS.append((label or table, n, elapsed))
    return n


TIMINGS: list[tuple[str, int, float]] = []


def sql(statement: str, params: list | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params or [])


def reset_sequences(models: list[type[Model]]) -> None:
    for model in models:
        table = model._meta.db_table
        sql(
            f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "
            f'COALESCE((SELECT max(id) FROM "{table}"), 0) + 1, false)'
        )


# --- the data -----------------------------------------------------------------------------------------------------


def truncate() -> None:
    tables = [
        "auth_user", "authtoken_token", "django_session", "django_admin_log",
        *(m._meta.db_table for m in django.apps.apps.get_models()
          if m._meta.app_label in ("oncall", "incidents", "postmortems", "metrics") and m._meta.managed
          and m._meta.db_table != "incidents_severitypolicy"),
    ]  # fmt: skip
    sql(f"TRUNCATE {', '.join(dict.fromkeys(tables))} RESTART IDENTITY CASCADE")


def load_reference(rng: random.Random, now: datetime) -> dict:
    """Teams, users, memberships, escalation policies, services, integrations, rotations and a year of shifts."""
    joined = now - timedelta(days=365 * YEARS)
    copy_rows(
        User,
        ["id", "username", "password", "email", "first_name", "last_name", "is_active", "is_staff", "is_superuser",
         "date_joined"],
        ((i, f"user{i:05d}", "!", f"user{i:05d}@example.com", f"First{i}", f"Last{i}", True, False, False, joined)
         for i in range(1, USERS + 1)),
        USERS, "users",
    )  # fmt: skip
    copy_rows(
        Team,
        ["id", "name", "slug", "timezone", "description", "chat_channel"],
        ((t, f"Team {t:02d}", f"team-{t:02d}", TIME_ZONES[t % len(TIME_ZONES)], "", "") for t in range(1, TEAMS + 1)),
        TEAMS, "teams",
    )  # fmt: skip
    per_team = USERS // TEAMS
    team_users = {t: list(range((t - 1) * per_team + 1, t * per_team + 1)) for t in range(1, TEAMS + 1)}
    copy_rows(
        TeamMembership,
        ["id", "team_id", "user_id", "role"],
        ((u, t, u, "manager" if i < 2 else "member") for t, users in team_users.items() for i, u in enumerate(users)),
        USERS, "memberships",
    )  # fmt: skip

    # rotations: a primary per team, a secondary for 40 teams, a third one for 20 teams (100 in all)
    rotations = []  # (id, team, layer, unit, count, members)
    rid = 0
    for t in range(1, TEAMS + 1):
        users = team_users[t]
        specs = [("Primary", "primary", users[2:10]), ("Secondary", "secondary", users[10:18])]
        if t <= ROTATIONS - 2 * TEAMS:
            specs.append(("Database", "primary", users[18:26]))
        for name, layer, members in specs:
            rid += 1
            unit, count = [("weekly", 1), ("daily", 1), ("hourly", 12)][rid % 3]
            rotations.append((rid, t, name, layer, unit, count, members))
    anchor = (now - timedelta(days=183)).date()
    copy_rows(
        Rotation,
        ["id", "team_id", "name", "layer", "timezone", "unit", "count", "handoff_weekday", "anchor_date",
         "ical_token", "horizon"],
        ((rid, t, name, layer, "UTC", unit, count, anchor.weekday() if unit == "weekly" else None, anchor,
          f"bench-rotation-{rid:04d}", timedelta(days=183))
         for rid, t, name, layer, unit, count, _ in rotations),
        len(rotations), "rotations",
    )  # fmt: skip
    copy_rows(
        RotationMember,
        ["rotation_id", "user_id", "position"],
        ((rid, u, i) for rid, *_, members in rotations for i, u in enumerate(members)),
        sum(len(r[-1]) for r in rotations), "rotation members",
    )  # fmt: skip

    def shifts() -> Iterator[tuple]:
        start0 = datetime(anchor.year, anchor.month, anchor.day, 9, tzinfo=UTC)
        for rid, t, _, layer, unit, count, members in rotations:
            step = {"weekly": timedelta(weeks=1), "daily": timedelta(days=1), "hourly": timedelta(hours=count)}[unit]
            n_slots = int(timedelta(days=366) / step)
            for n in range(n_slots):
                start = start0 + n * step
                user = members[n % len(members)]
                yield (rid, t, layer, n, f"t{int(start.timestamp())}p0", user, user,
                       f"[{start.isoformat()},{(start + step).isoformat()})", "generated")  # fmt: skip

    n_shifts = sum(int(timedelta(days=366) / {"weekly": timedelta(weeks=1), "daily": timedelta(days=1),
                                               "hourly": timedelta(hours=r[5])}[r[4]]) for r in rotations)  # fmt: skip
    copy_rows(
        Shift,
        ["rotation_id", "team_id", "layer", "slot", "key", "user_id", "planned_user_id", "period", "source"],
        shifts(),
        n_shifts,
        "shifts (a year)",
    )

    # escalation: per team, current primary → current secondary → the team's managers, repeated once
    copy_rows(
        EscalationPolicy, ["id", "team_id", "name", "repeat"], ((t, t, "Default", 1) for t in range(1, TEAMS + 1)),
        TEAMS, "escalation policies",
    )  # fmt: skip
    copy_rows(
        EscalationStep,
        ["id", "policy_id", "position", "delay_minutes"],
        ((3 * (t - 1) + p + 1, t, p, 15) for t in range(1, TEAMS + 1) for p in range(3)),
        3 * TEAMS, "escalation steps",
    )  # fmt: skip
    by_team_layer = {}
    for rid, t, _name, layer, *_ in rotations:
        by_team_layer.setdefault((t, layer), rid)

    def targets() -> Iterator[tuple]:
        for t in range(1, TEAMS + 1):
            base = 3 * (t - 1)
            yield (base + 1, "rotation_current", by_team_layer[(t, "primary")])
            yield (base + 2, "rotation_current", by_team_layer[(t, "secondary")])
            yield (base + 2, "rotation_next", by_team_layer[(t, "primary")])
            yield (base + 3, "team_managers", None)

    copy_rows(EscalationTarget, ["step_id", "kind", "rotation_id"], targets(), 4 * TEAMS, "escalation targets")

    services = [(s, (s - 1) % TEAMS + 1) for s in range(1, SERVICES + 1)]
    copy_rows(
        Service,
        ["id", "name", "slug", "team_id", "escalation_policy_id", "description"],
        ((s, f"{WORDS[s % len(WORDS)]}-{s:03d}", f"{WORDS[s % len(WORDS)]}-{s:03d}", t, t, "") for s, t in services),
        SERVICES, "services",
    )  # fmt: skip
    copy_rows(
        Integration,
        ["id", "service_id", "kind", "name", "key_digest", "key_hint", "key_rotated_at", "rate_limit_per_minute"],
        ((s, s, "alertmanager", "alertmanager", key_digest(f"bench-key-{s:04d}"), f"bench-{s:03d}"[:8], joined,
          1_000_000_000) for s, _ in services),
        SERVICES, "integrations",
    )  # fmt: skip
    reset_sequences([User, Team, TeamMembership, Rotation, RotationMember, Shift, EscalationPolicy, EscalationStep,
                     EscalationTarget, Service, Integration])  # fmt: skip
    return {"team_users": team_users, "services": services}


def _severity(rng: random.Random) -> str:
    x, acc = rng.random(), 0.0
    for level, p in SEVERITIES:
        acc += p
        if x < acc:
            return level
    return "P3"


def load_incidents(scale: Scale, rng: random.Random, now: datetime, ref: dict) -> None:
    """Incidents over five years (ids in declaration order) with their timeline, status updates and alerts."""
    team_users, services = ref["team_users"], ref["services"]
    span = timedelta(days=365 * YEARS).total_seconds()
    begin = now - timedelta(days=365 * YEARS)
    # a few services are noisy: weights follow a Zipf-like curve
    weights = [1 / (i + 1) ** 0.8 for i in range(len(services))]
    cumulative = []
    acc = 0.0
    for w in weights:
        acc += w
        cumulative.append(acc)
    declared = sorted(rng.random() * span for _ in range(scale.incidents))
    refs: dict[int, int] = {}
    minute = timedelta(minutes=1)

    # one pass computes every row of the incident and keeps what the child tables need, compactly
    plan = []  # (id, declared_at, severity, status, service, team, started, detected, ack, mitigated, resolved, closed)
    for i, offset in enumerate(declared, start=1):
        declared_at = begin + timedelta(seconds=offset)
        year = declared_at.year
        refs[year] = refs.get(year, 0) + 1
        service, team = services[_bisect(cumulative, rng.random() * acc)]
        severity = _severity(rng)
        detected = declared_at - rng.randint(0, 10) * minute
        started = detected - rng.randint(0, 60) * minute
        age = now - declared_at
        ack = mitigated = resolved = closed = None
        if age < timedelta(days=2) and rng.random() < 0.5:
            status = rng.choice(["triggered", "acknowledged", "mitigated"])
        elif rng.random() < 0.04:
            status = "cancelled"
        elif age < timedelta(days=14) and rng.random() < 0.5:
            status = "resolved"
        else:
            status = "closed"
        if status != "triggered":
            ack = declared_at + rng.randint(1, 30) * minute
            if ack < detected:
                ack = detected
        if status in ("mitigated", "resolved", "closed"):
            mitigated = ack + rng.randint(5, 240) * minute
        if status in ("resolved", "closed"):
            resolved = mitigated + rng.randint(0, 600) * minute
        if status == "closed":
            closed = resolved + rng.randint(60, 60 * 24 * 7) * minute
        if status == "cancelled":
            closed = declared_at + rng.randint(5, 120) * minute
        # the generator never writes the future: an incident that would finish later is less finished now
        if closed is not None and closed > now:
            closed, status = (now, status) if status == "cancelled" else (None, "resolved")
        if resolved is not None and resolved > now:
            resolved, status = None, "mitigated"
        if mitigated is not None and mitigated > now:
            mitigated, status = None, "acknowledged"
        if ack is not None and ack > now:
            ack, status = None, "triggered"
        plan.append((i, declared_at, severity, status, service, team, started, detected, ack, mitigated, resolved,
                     closed, f"INC-{year}-{refs[year]}"))  # fmt: skip

    def incidents() -> Iterator[tuple]:
        for i, declared_at, severity, status, service, team, started, detected, ack, mit, res, closed, ref_ in plan:
            users = team_users[team]
            commander = users[i % len(users)] if ack else None
            source = "alert" if i % 10 < 7 else "manual"
            reason = ("false_positive" if i % 2 else "cancelled") if status == "cancelled" else ""
            channel = f"inc-{ref_.lower()}" if severity in ("P0", "P1") else ""
            yield (i, ref_, f"{WORDS[i % len(WORDS)]} {ALERTNAMES[i % len(ALERTNAMES)]} on {service}", "",
                   severity, status, service, started, detected, declared_at, ack, mit, res, closed, commander,
                   None, channel, i % 100 == 0, reason, source, None)  # fmt: skip

    copy_rows(
        Incident,
        ["id", "ref", "title", "summary", "severity", "status", "service_id", "started_at", "detected_at",
         "declared_at", "acknowledged_at", "mitigated_at", "resolved_at", "closed_at", "commander_id",
         "comms_lead_id", "channel", "is_practice", "closure_reason", "source", "created_by_id"],
        incidents(), scale.incidents, "incidents",
    )  # fmt: skip
    copy_rows(RefCounter, ["year", "value"], ((y, n) for y, n in refs.items()), len(refs), "ref counters")

    def events() -> Iterator[tuple]:
        extra_notes = max(scale.events_per_incident - 4, 0)
        for i, declared_at, _, status, _, team, _, _, ack, mit, res, closed, _ in plan:
            actor = team_users[team][i % per_team]
            yield (i, declared_at, "declared", None, "Declared", "{}")
            for at, kind in ((ack, "acknowledged"), (mit, "mitigated"), (res, "resolved"),
                             (closed, "cancelled" if status == "cancelled" else "closed")):  # fmt: skip
                if at is not None:
                    yield (i, at, kind, actor, "", "{}")
            for k in range(int(extra_notes + (rng.random() < extra_notes % 1))):
                yield (i, declared_at + (k + 1) * 7 * minute, "note", actor, "Looking at dashboards", "{}")

    per_team = USERS // TEAMS
    copy_rows(
        IncidentEvent,
        ["incident_id", "at", "kind", "actor_id", "message", "data"],
        events(), int(scale.incidents * scale.events_per_incident), "timeline events",
    )  # fmt: skip

    def updates() -> Iterator[tuple]:  # P0–P2 get status updates on about their cadence, sometimes late
        cadence = {"P0": 30, "P1": 60, "P2": 240}
        for i, declared_at, severity, _, _, team, _, _, _, _, res, _, _ in plan:
            if severity not in cadence:
                continue
            end = res or declared_at + timedelta(hours=2)
            at = declared_at + cadence[severity] * minute * rng.uniform(0.5, 1.3)
            while at < end and at < now:
                yield (i, at, team_users[team][0], "Still working on it", "stakeholders")
                at += cadence[severity] * minute * rng.uniform(0.6, 1.3)

    copy_rows(
        StatusUpdate, ["incident_id", "at", "author_id", "message", "audience"], updates(),
        int(scale.incidents * 0.42 * 2), "status updates (≈)",
    )  # fmt: skip

    def alerts() -> Iterator[tuple]:
        """Alert-sourced incidents get their group's alerts; the rest are noise without an incident. Written in
        the order they would have arrived (received_at), as a running Firebreak writes them: a month's alerts
        then sit together on disk, as in production, rather than spread over the whole table."""
        sourced = [row for row in plan if row[0] % 10 < 7]
        attached = min(scale.alerts, int(len(sourced) * 3))
        per_incident = attached / max(len(sourced), 1)
        counts = [max(int(per_incident) + (rng.random() < per_incident % 1), 1) for _ in sourced]
        noise_count = max(scale.alerts - sum(counts), 0)

        def attached_alerts() -> Iterator[tuple]:
            fp = 0
            for (i, _declared_at, severity, status, service, _, _started, detected, *_rest), k in zip(
                sourced, counts, strict=True
            ):
                open_ = status in Incident.OPEN_STATUSES
                for j in range(k):
                    fp += 1
                    name = ALERTNAMES[(i + j) % len(ALERTNAMES)]
                    firing = open_ and j == 0
                    starts = detected + j * minute
                    received = starts + rng.randint(0, 30) * timedelta(seconds=1)
                    ends = None if firing else received + rng.randint(1, 240) * minute
                    yield _alert(fp, service, f"{{}}:{{service=\"{service}\",incident=\"{i}\"}}", name, severity,
                                 starts, ends, received, i, firing, "")  # fmt: skip

        def noise_alerts() -> Iterator[tuple]:
            offsets = sorted(rng.random() * span for _ in range(noise_count))
            for n, offset in enumerate(offsets):
                fp = NOISE_FP_BASE + n
                service = services[_bisect(cumulative, rng.random() * acc)][0]
                received = begin + timedelta(seconds=offset)
                name = ALERTNAMES[fp % len(ALERTNAMES)]
                suppressed = rng.choice(["informational", "flap", "maintenance", "informational"])
                yield _alert(fp, service, f"{{}}:{{alertname=\"{name}\",service=\"{service}\"}}", name,
                             "" if suppressed == "informational" else "P3", received, received + 3 * minute,
                             received, None, False, suppressed)  # fmt: skip

        # both streams are (nearly) in received order; merge them on received_at (column 10 of the row)
        yield from heapq.merge(attached_alerts(), noise_alerts(), key=lambda row: row[10])

    copy_rows(
        Alert,
        ["integration_id", "service_id", "fingerprint", "group_key", "status", "title", "labels", "annotations",
         "starts_at", "ends_at", "received_at", "last_received_at", "repeat_count", "resolved_at", "severity",
         "actionable", "suppressed", "incident_id", "raw"],
        alerts(), scale.alerts, "alerts",
    )  # fmt: skip
    reset_sequences([Incident, IncidentEvent, StatusUpdate, Alert])

    # postmortems: the most recent resolved/closed P0–P2 incidents first get one, up to the scale's count
    candidates = [row for row in reversed(plan) if row[2] != "P3" and row[3] in ("resolved", "closed")]
    chosen = candidates[: scale.postmortems]

    def postmortems() -> Iterator[tuple]:
        for pid, (_i, _declared_at, _, status, _, team, *_r, res, closed, ref_) in enumerate(chosen, start=1):
            published = status == "closed" and closed is not None
            published_at = closed - timedelta(minutes=30) if published else None
            if published_at is not None and published_at < res:
                published_at = res
            yield (pid, f"{ref_}: what happened", "published" if published else "draft", team_users[team][0],
                   res + timedelta(days=7), "Summary.", published_at, res, res)  # fmt: skip

    copy_rows(
        Postmortem,
        ["id", "title", "status", "owner_id", "due_at", "summary", "published_at", "created_at", "updated_at"],
        postmortems(), len(chosen), "postmortems",
    )  # fmt: skip
    copy_rows(
        Postmortem.incidents.through, ["postmortem_id", "incident_id"],
        ((pid, row[0]) for pid, row in enumerate(chosen, start=1)), len(chosen), "postmortem incidents",
    )  # fmt: skip
    copy_rows(
        ContributingFactor, ["postmortem_id", "category", "description", "position"],
        ((pid, ContributingFactor.Category.values[pid % len(ContributingFactor.Category.values)], "A factor.", 0)
         for pid in range(1, len(chosen) + 1)),
        len(chosen), "contributing factors",
    )  # fmt: skip

    def action_items() -> Iterator[tuple]:
        n = scale.action_items
        per_pm = n / max(len(chosen), 1)
        written = 0
        for pid, (_, _, _, _, _, team, *_r, res, _closed, ref_) in enumerate(chosen, start=1):
            for k in range(int(per_pm) + (rng.random() < per_pm % 1)):
                if written >= n:
                    return
                written += 1
                due = (res + timedelta(days=rng.randint(7, 60))).date()
                roll = rng.random()
                status = (
                    "done" if roll < 0.6 else "wont_do" if roll < 0.65 else "in_progress" if roll < 0.75 else "open"
                )
                completed = datetime.combine(due, datetime.min.time(), UTC) - timedelta(days=rng.randint(-10, 5)) \
                    if status == "done" else None  # fmt: skip
                if completed is not None and completed > now:
                    completed = now
                yield (pid, f"Follow-up {k + 1} of {ref_}", team_users[team][k % per_team], team,
                       "priority" if k == 0 else "improvement", ["prevent", "detect", "mitigate", "process"][k % 4],
                       due, status, completed, "Not worth it" if status == "wont_do" else "", res, res)  # fmt: skip

    per_team = USERS // TEAMS
    copy_rows(
        ActionItem,
        ["postmortem_id", "title", "owner_id", "team_id", "priority", "kind", "due_on", "status", "completed_at",
         "wont_do_reason", "created_at", "updated_at"],
        action_items(), scale.action_items, "action items",
    )  # fmt: skip
    reset_sequences([Postmortem, ContributingFactor, ActionItem])


def _alert(fp, service, group_key, name, severity, starts, ends, received, incident, firing, suppressed) -> tuple:
    instance = f"10.0.{fp % 250}.{fp % 7}:9100"
    labels = json.dumps({"alertname": name, "service": f"svc-{service}", "severity": "critical", "instance": instance})
    annotations = json.dumps({"summary": f"{name} on svc-{service}"})
    resolved_at = None if firing else ends
    return (service, service, f"{fp:016x}", group_key, "firing" if firing else "resolved", name, labels,
            annotations, starts, ends, received, ends or received, 1 + fp % 3, resolved_at, severity,
            suppressed != "informational", suppressed, incident, "{}")  # fmt: skip


def _bisect(cumulative: list[float], x: float) -> int:
    lo, hi = 0, len(cumulative) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if cumulative[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


def ensure_bench_admin() -> None:
    """The superuser the admin and API benchmarks sign in as (its password is never used: force_login)."""
    User.objects.filter(username=BENCH_ADMIN).delete()
    User.objects.create_superuser(BENCH_ADMIN, f"{BENCH_ADMIN}@example.com", None)


def generate(scale: Scale, *, seed: int = 8) -> list[tuple[str, int, float]]:
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    TIMINGS.clear()
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
    truncate()
    ref = load_reference(rng, now)
    load_incidents(scale, rng, now, ref)
    ensure_bench_admin()
    t0 = time.perf_counter()
    sql("ANALYZE")
    TIMINGS.append(("ANALYZE", 0, time.perf_counter() - t0))
    TIMINGS.append(("total", 0, time.perf_counter() - started))
    return TIMINGS


def scale_from_env() -> Scale:
    name = os.environ.get("BENCH_SCALE", "small") or "small"
    if name not in SCALES:
        raise SystemExit(f"BENCH_SCALE must be one of {', '.join(SCALES)}, not {name!r}")
    return SCALES[name]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--force", action="store_true", help="run even if the database name lacks 'bench'")
    args = parser.parse_args()
    name = connection.settings_dict["NAME"]
    if "bench" not in name and not args.force:
        raise SystemExit(f"refusing to replace the data of database {name!r} (its name lacks 'bench'); --force")
    main_for(scale_from_env())


def main_for(scale: Scale) -> None:
    if "bench" not in connection.settings_dict["NAME"]:
        raise SystemExit(f"refusing to replace the data of {connection.settings_dict['NAME']!r}: not a bench database")
    print(f"generating scale {scale.name} into {connection.settings_dict['NAME']}", file=sys.stderr)
    timings = generate(scale)
    print(f"\n{'table':<24}{'rows':>12}{'seconds':>10}")
    for label, rows, seconds in timings:
        print(f"{label:<24}{rows:>12,}{seconds:>10.1f}")


if __name__ == "__main__":
    main()
