from datetime import timedelta

import pytest

from oncall import services
from oncall.models import EscalationPolicy, EscalationStep, EscalationTarget, Override, Rotation, Unavailability
from tests.oncall.factories import TeamFactory, UserFactory

DAILY = {"unit": Rotation.Unit.DAILY, "handoff_weekday": None, "timezone": "Europe/Berlin"}


def test_oncall_now_lists_holder_until_and_next_per_team_and_layer(responder_api, make_rotation, now):
    rotation = make_rotation(3, **DAILY)
    services.rotation_generate(rotation=rotation)
    current = rotation.shifts.get(period__contains=now)
    response = responder_api.get("/api/v1/oncall/")
    assert response.status_code == 200
    [entry] = response.json()
    assert entry["team"] == rotation.team.name
    assert entry["layer"] == "primary"
    assert entry["holder"]["username"] == current.user.username
    assert entry["is_gap"] is False
    assert entry["next_holder"]["username"] != current.user.username
    later = responder_api.get("/api/v1/oncall/", {"at": (current.period.upper + timedelta(minutes=1)).isoformat()})
    assert later.json()[0]["holder"]["username"] == entry["next_holder"]["username"]


def test_oncall_now_rejects_a_naive_time(responder_api, now):
    response = responder_api.get("/api/v1/oncall/", {"at": "2026-06-10T12:00:00"})
    assert response.status_code == 400
    assert response.json()["errors"]["at"]


def test_shifts_in_a_range(responder_api, make_rotation, now):
    rotation = make_rotation(3, **DAILY)
    services.rotation_generate(rotation=rotation)
    response = responder_api.get(
        "/api/v1/shifts/",
        {"rotation": rotation.pk, "start": now.isoformat(), "end": (now + timedelta(days=3)).isoformat()},
    )
    assert response.status_code == 200
    assert len(response.json()) == 4  # the current one and three more
    assert (
        responder_api.get(
            "/api/v1/shifts/", {"start": now.isoformat(), "end": (now + timedelta(days=200)).isoformat()}
        ).status_code
        == 400
    )


def test_override_api_create_and_refusal_in_the_past(manager_api, make_rotation, now):
    rotation = make_rotation(3, **DAILY)
    services.rotation_generate(rotation=rotation)
    stand_in = UserFactory(username="stand-in")
    body = {
        "rotation": rotation.pk,
        "user": "stand-in",
        "start": (now + timedelta(hours=1)).isoformat(),
        "end": (now + timedelta(hours=30)).isoformat(),
    }
    created = manager_api.post("/api/v1/overrides/", body, format="json")
    assert created.status_code == 201, created.json()
    assert rotation.shifts.filter(user=stand_in).exists()
    past = manager_api.post(
        "/api/v1/overrides/",
        {**body, "start": (now - timedelta(hours=3)).isoformat(), "end": now.isoformat()},
        format="json",
    )
    assert past.status_code == 409
    assert "no overrides in the past" in past.json()["detail"]
    assert Override.objects.count() == 1
    cancelled = manager_api.delete(f"/api/v1/overrides/{created.json()['id']}/")
    assert cancelled.status_code == 204
    assert not rotation.shifts.filter(user=stand_in).exists()


def test_responder_cannot_create_overrides(responder_api, make_rotation, now):
    rotation = make_rotation(2, **DAILY)
    body = {
        "rotation": rotation.pk,
        "user": "responder",
        "start": (now + timedelta(hours=1)).isoformat(),
        "end": (now + timedelta(hours=3)).isoformat(),
    }
    assert responder_api.post("/api/v1/overrides/", body, format="json").status_code == 403


def test_rotation_create_generates_shifts(manager_api, now):
    team = TeamFactory()
    body = {"team": team.slug, "name": "Primary", "layer": "primary", "timezone": "America/New_York", "unit": "weekly",
            "count": 1, "handoff_time": "10:00", "handoff_weekday": 1, "anchor_date": "2026-06-01"}  # fmt: skip
    response = manager_api.post("/api/v1/rotations/", body, format="json")
    assert response.status_code == 201, response.json()
    rotation = Rotation.objects.get(pk=response.json()["id"])
    added = manager_api.post(f"/api/v1/rotations/{rotation.pk}/members/", {"user": "manager"}, format="json")
    assert added.status_code == 201
    assert rotation.shifts.filter(user__username="manager").exists()


def test_rotation_member_active_until_before_active_from_is_a_400_naming_it(manager_api, make_rotation, now):
    rotation = make_rotation(2)
    body = {"user": "manager", "active_from": "2026-12-01T22:14:44Z", "active_until": "2026-12-01T22:14:34Z"}
    response = manager_api.post(f"/api/v1/rotations/{rotation.pk}/members/", body, format="json")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["active_until"]
    assert not rotation.members.filter(user__username="manager").exists()


def test_rotation_with_a_slot_longer_than_a_week_is_refused(manager_api, now):
    body = {
        "team": TeamFactory().slug,
        "name": "Long",
        "unit": "daily",
        "count": 8,
        "handoff_time": "09:00",
        "anchor_date": "2026-06-01",
    }
    response = manager_api.post("/api/v1/rotations/", body, format="json")
    assert response.status_code == 400
    assert not Rotation.objects.exists()


def test_unavailability_own_via_api(responder_api, responder, now):
    body = {
        "kind": "vacation",
        "start": (now + timedelta(days=10)).isoformat(),
        "end": (now + timedelta(days=17)).isoformat(),
    }
    response = responder_api.post("/api/v1/unavailability/", body, format="json")
    assert response.status_code == 201, response.json()
    assert Unavailability.objects.get().user == responder
    other = responder_api.post("/api/v1/unavailability/", {**body, "user": "manager"}, format="json")
    assert other.status_code == 400


def test_swap_via_api(api_client, make_rotation, now):
    rotation = make_rotation(3, **DAILY)
    services.rotation_generate(rotation=rotation)
    a, b = [m.user for m in rotation.members.order_by("position")[:2]]
    current = rotation.shifts.get(period__contains=now).slot
    slot_a = rotation.shifts.filter(user=a, slot__gt=current + 1).order_by("slot").first().slot
    slot_b = rotation.shifts.filter(user=b, slot__gt=current + 1).order_by("slot").first().slot
    api_client.force_authenticate(a)
    created = api_client.post(
        "/api/v1/swaps/",
        {"rotation": rotation.pk, "counterparty": b.username, "requester_slot": slot_a, "counterparty_slot": slot_b},
        format="json",
    )
    assert created.status_code == 201, created.json()
    api_client.force_authenticate(b)
    accepted = api_client.post(f"/api/v1/swaps/{created.json()['id']}/accept/")
    assert accepted.status_code == 200
    assert accepted.json()["status"] == "accepted"
    assert rotation.shifts.get(slot=slot_a).user == b


def test_escalation_policies_with_resolved_chain(responder_api, make_rotation, now, django_assert_max_num_queries):
    rotation = make_rotation(2, **DAILY)
    services.rotation_generate(rotation=rotation)
    policy = EscalationPolicy.objects.create(team=rotation.team, name="Default", repeat=1)
    step = EscalationStep.objects.create(policy=policy, position=0, delay_minutes=5)
    EscalationTarget.objects.create(step=step, kind=EscalationTarget.Kind.ROTATION_CURRENT, rotation=rotation)
    response = responder_api.get("/api/v1/escalation-policies/")
    assert response.status_code == 200
    [body] = response.json()
    holder = rotation.shifts.get(period__contains=now).user.username
    assert [s["users"][0]["username"] for s in body["chain"]] == [holder, holder]
    assert [s["starts_after_minutes"] for s in body["chain"]] == [0, 5]


def test_api_lists_run_a_constant_number_of_queries(responder_api, make_rotation, now, django_assert_max_num_queries):
    for _ in range(3):
        services.rotation_generate(rotation=make_rotation(3, **DAILY))
    params = {"start": now.isoformat(), "end": (now + timedelta(days=30)).isoformat()}
    for url, query in (("/api/v1/shifts/", params), ("/api/v1/rotations/", {}), ("/api/v1/oncall/", {})):
        with django_assert_max_num_queries(6):
            response = responder_api.get(url, query)
        assert response.status_code == 200


def test_reorder_members_replans_only_after_the_next_shift(manager_api, make_rotation, now):
    rotation = make_rotation(3, **DAILY)
    services.rotation_generate(rotation=rotation)
    current = rotation.shifts.get(period__contains=now)
    nxt = rotation.shifts.get(period__startswith=current.period.upper)
    names = [m.user.username for m in rotation.members.order_by("position")]
    response = manager_api.post(
        f"/api/v1/rotations/{rotation.pk}/reorder-members/", {"usernames": names[::-1]}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert [m["user"] for m in response.json()] == names[::-1]
    assert rotation.shifts.get(period__contains=now).user_id == current.user_id
    assert rotation.shifts.get(period__startswith=current.period.upper).user_id == nxt.user_id


def test_removing_the_current_holder_via_api_is_a_409_naming_the_rule(manager_api, make_rotation, now):
    rotation = make_rotation(3, **DAILY)
    services.rotation_generate(rotation=rotation)
    holder = rotation.shifts.get(period__contains=now).user
    response = manager_api.delete(f"/api/v1/rotations/{rotation.pk}/members/{holder.username}/")
    assert response.status_code == 409
    assert "frozen shift keeps its holder" in response.json()["detail"]
    assert rotation.members.filter(user=holder).exists()


def test_escalation_policies_list_runs_a_constant_number_of_queries(
    responder_api, make_rotation, now, django_assert_max_num_queries
):
    for i in range(3):
        rotation = make_rotation(2, **DAILY)
        services.rotation_generate(rotation=rotation)
        policy = EscalationPolicy.objects.create(team=rotation.team, name=f"P{i}", repeat=2)
        for position, kind in enumerate(["rotation_current", "rotation_next", "team_managers"]):
            step = EscalationStep.objects.create(policy=policy, position=position, delay_minutes=5)
            EscalationTarget.objects.create(
                step=step, kind=kind, rotation=rotation if kind.startswith("rotation") else None
            )
    with django_assert_max_num_queries(10):
        response = responder_api.get("/api/v1/escalation-policies/")
    assert response.status_code == 200
    assert all(len(p["chain"]) == 9 and all(s["users"] for s in p["chain"]) for p in response.json())


def test_rotation_created_through_the_api_then_given_members_has_holders_now_and_next(manager_api, now):
    team = TeamFactory()
    body = {"team": team.slug, "name": "Fresh", "layer": "primary", "timezone": "Europe/Berlin", "unit": "weekly",
            "count": 1, "handoff_time": "09:00", "handoff_weekday": 0, "anchor_date": "2026-06-01",
            "is_active": True}  # fmt: skip
    response = manager_api.post("/api/v1/rotations/", body, format="json")
    assert response.status_code == 201, response.json()
    rotation = Rotation.objects.get(pk=response.json()["id"])
    assert rotation.shifts.filter(source="gap").exists()  # nobody yet: explicit gaps
    for name in ("ann", "bob", "cem"):
        UserFactory(username=name)
        added = manager_api.post(f"/api/v1/rotations/{rotation.pk}/members/", {"user": name}, format="json")
        assert added.status_code == 201, added.json()
    current = rotation.shifts.get(period__contains=now)
    following = rotation.shifts.get(period__startswith=current.period.upper)
    assert current.user is not None
    assert following.user is not None
    assert not rotation.shifts.filter(source="gap", period__endswith__gt=now).exists()
    assert not rotation.issues.filter(resolved_at__isnull=True, kind="gap").exists()
    (entry,) = [e for e in manager_api.get("/api/v1/oncall/").json() if e["rotation"] == rotation.pk]
    assert entry["holder"] is not None
    assert not entry["is_gap"]
    # what already passed stays true: nobody held the pager before the first member came
    assert rotation.shifts.get(period__contains=now - timedelta(minutes=1)).user is None


def _no_database_text(body) -> None:
    text = str(body).lower()
    for word in ("line 1", "range lower bound", "sql", "psycopg", "violates", "constraint", "displacement"):
        assert word not in text, body


def test_unavailability_in_the_past_is_a_400_naming_the_end_without_database_text(responder_api, now):
    body = {"start": (now - timedelta(days=3)).isoformat(), "end": (now - timedelta(days=1)).isoformat()}
    response = responder_api.post("/api/v1/unavailability/", body, format="json")
    assert response.status_code == 400, response.json()
    assert list(response.json()["errors"]) == ["end"]
    _no_database_text(response.json())
    assert not Unavailability.objects.exists()


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        ("2026-07-02T09:00:00+02:00", "2026-07-01T09:00:00+02:00", "end"),  # end before start
        ("2026-07-01T09:00:00", "2026-07-02T09:00:00+02:00", "start"),  # naive
        ("2026-07-01T09:00:00+02:00", "2026-07-02T09:00:00", "end"),
    ],
)
def test_unavailability_bad_periods_are_400s_naming_the_field(responder_api, now, start, end, field):
    response = responder_api.post("/api/v1/unavailability/", {"start": start, "end": end}, format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json()["errors"]
    _no_database_text(response.json())


def test_overlapping_unavailability_is_refused_with_both_ends_in_the_persons_zone(responder_api, responder, now):
    from tests.oncall.factories import TeamMembershipFactory

    TeamMembershipFactory(team=TeamFactory(timezone="Europe/Berlin"), user=responder)
    first = {"start": "2026-07-01T09:00:00+02:00", "end": "2026-07-08T09:00:00+02:00"}
    assert responder_api.post("/api/v1/unavailability/", first, format="json").status_code == 201
    again = {"start": "2026-07-05T00:00:00+02:00", "end": "2026-07-10T00:00:00+02:00"}
    response = responder_api.post("/api/v1/unavailability/", again, format="json")
    assert response.status_code == 409, response.json()
    (message,) = response.json()["errors"]["start"]
    assert "from Wed 2026-07-01 09:00 CEST to Wed 2026-07-08 09:00 CEST (Europe/Berlin)" in message
    assert Unavailability.objects.count() == 1


def test_a_value_postgresql_cannot_hold_is_a_400_without_database_text(responder_api, now):
    response = responder_api.get("/api/v1/shifts/", {"start": "2026-06-10T00:00:00+23:00"})
    assert response.status_code == 400
    _no_database_text(response.json())


def test_member_with_active_until_before_active_from_is_a_400_naming_the_field(manager_api, make_rotation, now):
    rotation = make_rotation(1, **DAILY)
    UserFactory(username="late")
    body = {"user": "late", "active_from": "2026-07-02T00:00:00Z", "active_until": "2026-07-01T00:00:00Z"}
    response = manager_api.post(f"/api/v1/rotations/{rotation.pk}/members/", body, format="json")
    assert response.status_code == 400, response.content
    assert list(response.json()["errors"]) == ["active_until"]
    _no_database_text(response.json())
    assert not rotation.members.filter(user__username="late").exists()


def _take(api, rotation, username, start, hours=2):
    body = {"rotation": rotation.pk, "user": username, "start": start.isoformat(),
            "end": (start + timedelta(hours=hours)).isoformat()}  # fmt: skip
    return api.post("/api/v1/overrides/", body, format="json")


def test_a_member_takes_a_shift_of_their_rotation_for_themselves(responder_api, responder, make_rotation, now):
    from tests.oncall.factories import RotationMemberFactory

    rotation = make_rotation(2, **DAILY)
    RotationMemberFactory(rotation=rotation, user=responder, position=9)
    services.rotation_generate(rotation=rotation)
    taken = _take(responder_api, rotation, "responder", now + timedelta(days=3))
    assert taken.status_code == 201, taken.json()
    assert rotation.shifts.get(period__contains=now + timedelta(days=3, hours=1)).user == responder
    # ... never for someone else, and only of their own rotations
    other = rotation.members.exclude(user=responder).first().user
    for_other = _take(responder_api, rotation, other.username, now + timedelta(days=5))
    assert for_other.status_code == 403
    assert "Only managers give a shift to someone else" in for_other.json()["detail"]
    elsewhere = _take(responder_api, make_rotation(2, **DAILY), "responder", now + timedelta(days=5))
    assert elsewhere.status_code == 403
    assert Override.objects.count() == 1
    # they cancel the shift they took; not one a manager gave someone else
    manager_made = services.override_create(
        rotation=rotation, user=other, start=now + timedelta(days=6), end=now + timedelta(days=6, hours=2)
    )
    assert responder_api.delete(f"/api/v1/overrides/{manager_made.pk}/").status_code == 403
    assert responder_api.delete(f"/api/v1/overrides/{taken.json()['id']}/").status_code == 204


def test_a_member_takes_a_shift_in_the_admin(client, responder, make_rotation, now):
    from tests.oncall.factories import RotationMemberFactory

    rotation = make_rotation(2, **DAILY)
    RotationMemberFactory(rotation=rotation, user=responder, position=9)
    services.rotation_generate(rotation=rotation)
    client.force_login(responder)
    form = client.get("/admin/oncall/override/add/")
    assert form.status_code == 200
    assert "user" not in form.context["adminform"].form.fields  # for themselves
    start = now + timedelta(days=2)
    response = client.post(
        "/admin/oncall/override/add/",
        {"rotation": rotation.pk, "start_0": start.strftime("%Y-%m-%d"), "start_1": "12:00:00",
         "end_0": start.strftime("%Y-%m-%d"), "end_1": "16:00:00", "reason": "swap with a friend"},
    )  # fmt: skip
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Override.objects.get().user == responder
    not_member = make_rotation(2, **DAILY)
    refused = client.post(
        "/admin/oncall/override/add/",
        {"rotation": not_member.pk, "start_0": start.strftime("%Y-%m-%d"), "start_1": "12:00:00",
         "end_0": start.strftime("%Y-%m-%d"), "end_1": "16:00:00", "reason": ""},
    )  # fmt: skip
    assert refused.status_code == 200
    assert refused.context["adminform"].form.errors == {
        "rotation": ["You can take shifts only of rotations you are a member of."]
    }
