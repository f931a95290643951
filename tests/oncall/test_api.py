from datetime import timedelta

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
