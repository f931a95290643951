from datetime import timedelta

import pytest

from oncall import services
from oncall.models import Override, Rotation, Unavailability
from tests.oncall.factories import UserFactory

DAILY = {"unit": Rotation.Unit.DAILY, "handoff_weekday": None, "timezone": "Europe/Berlin"}


@pytest.fixture
def manager_client(client, manager):
    client.force_login(manager)
    return client


@pytest.fixture
def busy(make_rotation, now):
    rotations = [make_rotation(3, **DAILY) for _ in range(3)]
    for rotation in rotations:
        services.rotation_generate(rotation=rotation)
    first = rotations[0]
    services.override_create(
        rotation=first, user=UserFactory(), start=now + timedelta(hours=1), end=now + timedelta(hours=5)
    )
    away = first.members.last().user
    services.unavailability_create(user=away, start=now + timedelta(days=5), end=now + timedelta(days=6))
    return rotations


@pytest.mark.parametrize(
    "model", ["rotation", "shift", "override", "unavailability", "swap", "scheduleissue", "handoff", "escalationpolicy"]
)
def test_changelists_run_a_bounded_number_of_queries(manager_client, busy, model, django_assert_max_num_queries):
    with django_assert_max_num_queries(12):
        response = manager_client.get(f"/admin/oncall/{model}/")
    assert response.status_code == 200


def test_rotation_page_draws_the_timeline(manager_client, busy):
    rotation = busy[0]
    response = manager_client.get(f"/admin/oncall/rotation/{rotation.pk}/change/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Next four weeks" in body
    assert str(rotation.members.first().user) in body
    assert "override" in body


def test_oncall_now_page_lists_every_rotation(manager_client, busy, now):
    response = manager_client.get("/admin/oncall/rotation/oncall-now/")
    assert response.status_code == 200
    body = response.content.decode()
    for rotation in busy:
        holder = rotation.shifts.get(period__contains=now).user
        assert str(holder) in body


def test_admin_override_in_the_past_is_refused_with_the_rule(manager_client, busy, now):
    rotation = busy[1]
    start = now - timedelta(hours=2)
    response = manager_client.post(
        "/admin/oncall/override/add/",
        {
            "rotation": rotation.pk,
            "user": UserFactory().pk,
            "start_0": start.strftime("%Y-%m-%d"),
            "start_1": start.strftime("%H:%M:%S"),
            "end_0": now.strftime("%Y-%m-%d"),
            "end_1": (now + timedelta(hours=2)).strftime("%H:%M:%S"),
            "reason": "",
        },
    )
    assert response.status_code == 200
    assert "no overrides in the past" in response.content.decode()
    assert not Override.objects.filter(rotation=rotation).exists()


def test_admin_override_add_goes_through_the_service(manager_client, busy, now):
    rotation = busy[1]
    stand_in = UserFactory()
    start, end = now + timedelta(hours=2), now + timedelta(hours=6)
    response = manager_client.post(
        "/admin/oncall/override/add/",
        {
            "rotation": rotation.pk,
            "user": stand_in.pk,
            "start_0": start.strftime("%Y-%m-%d"),
            "start_1": start.strftime("%H:%M:%S"),
            "end_0": end.strftime("%Y-%m-%d"),
            "end_1": end.strftime("%H:%M:%S"),
            "reason": "doctor",
        },
    )
    assert response.status_code == 302
    assert rotation.shifts.filter(user=stand_in, source="override").exists()


def test_admin_unavailability_over_a_frozen_shift_shows_the_rule_and_changes_nothing(manager_client, busy, now):
    holder = busy[2].shifts.get(period__contains=now).user
    end = now + timedelta(days=2)
    response = manager_client.post(
        "/admin/oncall/unavailability/add/",
        {
            "user": holder.pk,
            "kind": "sick",
            "start_0": now.strftime("%Y-%m-%d"),
            "start_1": now.strftime("%H:%M:%S"),
            "end_0": end.strftime("%Y-%m-%d"),
            "end_1": end.strftime("%H:%M:%S"),
            "note": "",
        },
        follow=True,
    )
    assert "a frozen shift keeps its holder" in response.content.decode()
    assert not Unavailability.objects.filter(user=holder).exists()


def test_a_member_proposes_a_swap_in_the_admin_by_picking_two_shifts(client, make_rotation, now):
    from django.contrib.auth.models import Group
    from django.urls import reverse

    from oncall.models import Notification, Swap

    rotation, other = make_rotation(3, **DAILY), make_rotation(2, **DAILY)
    for r in (rotation, other):
        services.rotation_generate(rotation=r)
    a, b = [m.user for m in rotation.members.order_by("position")[:2]]
    a.is_staff = True
    a.save()
    a.groups.add(Group.objects.get(name="Responders"))
    current = rotation.shifts.get(period__contains=now).slot
    mine = rotation.shifts.filter(user=a, slot__gt=current + 1).order_by("slot").first()
    theirs = rotation.shifts.filter(user=b, slot__gt=current + 1).order_by("slot").first()
    elsewhere = other.shifts.filter(slot__gt=current + 1).exclude(user=None).order_by("slot").first()
    client.force_login(a)
    add = reverse("admin:oncall_swap_add")

    page = client.get(add).content.decode()
    assert f'value="{mine.pk}"' in page  # offered: a's own shift, and b's in a's rotation
    assert f'value="{theirs.pk}"' in page
    assert f'value="{elsewhere.pk}"' not in page  # not a rotation of a's

    refused = client.post(add, {"your_shift": mine.pk, "their_shift": mine.pk})
    assert refused.status_code == 200
    assert "Select a valid choice" in refused.content.decode()  # one's own shift is not "theirs"
    assert not Swap.objects.exists()

    response = client.post(add, {"your_shift": mine.pk, "their_shift": theirs.pk})
    assert response.status_code == 302, response.content.decode()[:3000]
    swap = Swap.objects.get()
    assert (swap.requester, swap.counterparty, swap.requester_slot, swap.counterparty_slot) == (
        a, b, mine.slot, theirs.slot
    )  # fmt: skip
    assert swap.status == "pending"
    assert Notification.objects.filter(user=b, payload__kind="swap_requested").count() == 1


def test_a_swap_proposal_the_plan_refuses_shows_the_rule_and_creates_nothing(client, make_rotation, now):
    from django.contrib.auth.models import Group
    from django.contrib.messages import get_messages
    from django.urls import reverse

    from oncall.models import Swap

    rotation = make_rotation(3, **DAILY)
    services.rotation_generate(rotation=rotation)
    a, b = [m.user for m in rotation.members.order_by("position")[:2]]
    a.is_staff = True
    a.save()
    a.groups.add(Group.objects.get(name="Responders"))
    current = rotation.shifts.get(period__contains=now).slot
    mine = rotation.shifts.filter(user=a, slot__gt=current + 1).order_by("slot").first()
    planned_for_b = rotation.shifts.filter(user=b, slot__gt=current + 1).order_by("slot").first()
    stand_in = UserFactory()  # holds b's slot by an override: b is still the planned holder
    services.override_create(
        rotation=rotation, user=stand_in, start=planned_for_b.period.lower, end=planned_for_b.period.upper
    )
    theirs = rotation.shifts.get(user=stand_in)
    client.force_login(a)

    response = client.post(reverse("admin:oncall_swap_add"), {"your_shift": mine.pk, "their_shift": theirs.pk})

    assert response.status_code == 200  # the form again, the choice kept, the reason next to it
    assert response.context["adminform"].form.errors == {
        "their_shift": ["That slot is not planned for the counterparty."]
    }
    assert list(get_messages(response.wsgi_request)) == []
    assert not Swap.objects.exists()


def _post_override(client, rotation, user, start, end, reason=""):
    from oncall.clock import zone

    local = zone("UTC")
    return client.post(
        "/admin/oncall/override/add/",
        {
            "rotation": rotation.pk,
            "user": user.pk,
            "start_0": start.astimezone(local).strftime("%Y-%m-%d"),
            "start_1": start.astimezone(local).strftime("%H:%M:%S"),
            "end_0": end.astimezone(local).strftime("%Y-%m-%d"),
            "end_1": end.astimezone(local).strftime("%H:%M:%S"),
            "reason": reason,
        },
    )


def test_admin_override_refused_for_a_vacation_keeps_the_input_and_shows_the_rule_at_the_field(
    manager_client, busy, now
):
    rotation = busy[1]
    stand_in = UserFactory(username="stand-in")
    services.unavailability_create(user=stand_in, start=now + timedelta(days=1), end=now + timedelta(days=3))
    start, end = now + timedelta(days=2), now + timedelta(days=2, hours=6)
    response = _post_override(manager_client, rotation, stand_in, start, end, reason="dentist")
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert form.errors == {
        "user": [
            "Rule 'never on call while unavailable': stand-in is unavailable (vacation) "
            "from Thu 2026-06-11 14:00 CEST to Sat 2026-06-13 14:00 CEST (Europe/Berlin)."
        ]
    }
    assert form.data["reason"] == "dentist"
    assert form.data["user"] == str(stand_in.pk)
    body = response.content.decode()
    assert 'value="dentist"' in body
    assert 'value="2026-06-12"' in body
    assert not Override.objects.filter(rotation=rotation).exists()


def test_admin_override_overlapping_another_names_it_and_both_its_ends(manager_client, busy, now):
    first = busy[0]  # has an override from now + 1 h to now + 5 h (the busy fixture)
    response = _post_override(manager_client, first, UserFactory(), now + timedelta(hours=2), now + timedelta(hours=3))
    assert response.status_code == 200
    (message,) = response.context["adminform"].form.errors["start"]
    assert "from Wed 2026-06-10 15:00 CEST to Wed 2026-06-10 19:00 CEST (Europe/Berlin)" in message
    assert Override.objects.filter(rotation=first).count() == 1


def test_admin_override_added_is_named_with_its_period_in_the_rotation_zone(manager_client, busy, now):
    from django.contrib.messages import get_messages

    rotation = busy[1]
    stand_in = UserFactory(username="helper")
    response = _post_override(manager_client, rotation, stand_in, now + timedelta(hours=2), now + timedelta(hours=6))
    assert response.status_code == 302
    (message,) = [str(m) for m in get_messages(response.wsgi_request)]
    assert "None" not in message
    assert "+00:00" not in message
    assert "helper covers" in message
    assert "from Wed 2026-06-10 16:00 CEST to Wed 2026-06-10 20:00 CEST" in message


def test_admin_forms_refuse_bad_input_with_field_messages_never_a_server_error(client, manager, make_rotation, now):
    """The sweep of issue 13: model-level errors and constraint violations that escaped as 500s."""
    from django.contrib.auth.models import Group

    from oncall.models import ContactMethod
    from tests.security.admin_forms import change_form_data

    # a responder adds a contact method they already have (the user is set by the admin, not the form)
    responder = UserFactory(username="resp")
    responder.groups.add(Group.objects.get(name="Responders"))
    ContactMethod.objects.create(user=responder, kind="email", address="resp@example.com")
    client.force_login(responder)
    again = client.post(
        "/admin/oncall/contactmethod/add/",
        {"user": manager.pk, "kind": "email", "address": "resp@example.com", "position": 0},  # user: ignored
    )
    assert again.status_code == 200
    assert again.context["adminform"].form.errors
    assert ContactMethod.objects.filter(user=responder).count() == 1

    # unavailability that is already over
    client.force_login(manager)
    start, end = now - timedelta(days=3), now - timedelta(days=1)
    past = client.post(
        "/admin/oncall/unavailability/add/",
        {"user": responder.pk, "kind": "sick", "start_0": start.strftime("%Y-%m-%d"), "start_1": "09:00:00",
         "end_0": end.strftime("%Y-%m-%d"), "end_1": "09:00:00", "note": ""},
    )  # fmt: skip
    assert past.status_code == 200
    assert list(past.context["adminform"].form.errors) == ["end"]
    assert not Unavailability.objects.exists()

    # a member's active period that ends before it starts
    rotation = make_rotation(2, **DAILY)
    url = f"/admin/oncall/rotation/{rotation.pk}/change/"
    data = change_form_data(client.get(url))
    data["members-0-active_from_0"], data["members-0-active_from_1"] = "2026-07-02", "00:00:00"
    data["members-0-active_until_0"], data["members-0-active_until_1"] = "2026-07-01", "00:00:00"
    response = client.post(url, data)
    assert response.status_code == 200
    errors = response.context["inline_admin_formsets"][0].formset.errors[0]
    assert errors == {"active_until": ["Active until must be after active from."]}
