from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError

from oncall import selectors, services
from oncall.errors import DomainError
from oncall.models import Notification, Override, Rotation, Shift, Swap, Unavailability
from tests.oncall.factories import RotationMemberFactory, UserFactory

DAILY = {"unit": Rotation.Unit.DAILY, "handoff_weekday": None, "timezone": "Europe/Berlin"}


@pytest.fixture
def planned(make_rotation, now):
    rotation = make_rotation(3, **DAILY)
    services.rotation_generate(rotation=rotation)
    return rotation


def _snapshot(rotation):
    return list(rotation.shifts.order_by("period").values_list("key", "user_id", "period", "source", "sequence"))


def test_override_crossing_a_handoff_splits_both_slots(planned, now):
    current = planned.shifts.get(period__contains=now)
    stand_in = UserFactory(username="stand-in")
    start = current.period.upper - timedelta(hours=2)
    end = current.period.upper + timedelta(hours=3)
    services.override_create(rotation=planned, user=stand_in, start=start, end=end)
    assert selectors.holder_at(rotation_id=planned.pk, at=current.period.upper) == stand_in
    assert selectors.holder_at(rotation_id=planned.pk, at=start - timedelta(minutes=1)) == current.user
    pieces = planned.shifts.filter(source=Shift.Source.OVERRIDE).order_by("period")
    assert [(p.period.lower, p.period.upper) for p in pieces] == [
        (start, current.period.upper),
        (current.period.upper, end),
    ]
    assert all(p.planned_user_id is not None for p in pieces)
    assert Notification.objects.filter(user=stand_in, payload__kind="schedule_changed").exists()


def test_override_cancel_restores_the_plan(planned, now):
    before = [(k, u, p) for k, u, p, _, _ in _snapshot(planned)]
    slot = planned.shifts.get(period__contains=now + timedelta(days=2))
    override = services.override_create(
        rotation=planned,
        user=UserFactory(),
        start=slot.period.lower + timedelta(hours=1),
        end=slot.period.lower + timedelta(hours=5),
    )
    services.override_cancel(override=override)
    assert [(k, u, p) for k, u, p, _, _ in _snapshot(planned)] == before
    assert Override.objects.get(pk=override.pk).cancelled_at is not None
    # the re-planned piece's SEQUENCE grew, its key (iCal UID) did not change
    assert planned.shifts.get(key=slot.key).sequence > slot.sequence


def test_override_in_the_past_is_refused_and_changes_nothing(planned, now):
    before = _snapshot(planned)
    with pytest.raises(DomainError, match="no overrides in the past") as excinfo:
        services.override_create(
            rotation=planned, user=UserFactory(), start=now - timedelta(hours=1), end=now + timedelta(hours=1)
        )
    assert excinfo.value.code == "override_in_past"
    assert _snapshot(planned) == before
    assert not Override.objects.exists()


def test_overlapping_override_is_refused(planned, now):
    start = now + timedelta(days=1)
    services.override_create(rotation=planned, user=UserFactory(), start=start, end=start + timedelta(hours=4))
    before = _snapshot(planned)
    with pytest.raises(DomainError, match="one override at a time"):
        services.override_create(
            rotation=planned, user=UserFactory(), start=start + timedelta(hours=2), end=start + timedelta(hours=6)
        )
    assert _snapshot(planned) == before
    assert Override.objects.count() == 1


def test_override_to_an_unavailable_person_is_refused(planned, now):
    away = UserFactory()
    start = now + timedelta(days=1)
    services.unavailability_create(user=away, start=start, end=start + timedelta(days=1))
    with pytest.raises(DomainError, match="never on call while unavailable"):
        services.override_create(rotation=planned, user=away, start=start, end=start + timedelta(hours=2))


def test_override_giving_someone_both_layers_is_refused(planned, make_rotation, now):
    secondary = make_rotation(2, team=planned.team, layer=Rotation.Layer.SECONDARY, **DAILY)
    services.rotation_generate(rotation=secondary)
    primary_holder = planned.shifts.get(period__contains=now + timedelta(days=1)).user
    with pytest.raises(DomainError, match="never primary and secondary at once"):
        services.override_create(
            rotation=secondary, user=primary_holder, start=now + timedelta(days=1), end=now + timedelta(days=1, hours=1)
        )


def test_override_longer_than_max_consecutive_days_is_refused(planned, now):
    with pytest.raises(DomainError, match="consecutive days"):
        services.override_create(
            rotation=planned, user=UserFactory(), start=now + timedelta(hours=1), end=now + timedelta(days=8)
        )
    assert not Override.objects.exists()


def test_override_end_before_start_is_a_validation_error(planned, now):
    with pytest.raises(ValidationError):
        services.override_create(
            rotation=planned, user=UserFactory(), start=now + timedelta(hours=2), end=now + timedelta(hours=1)
        )


def _future_slots(rotation, now, user_a, user_b):
    current = rotation.shifts.get(period__contains=now).slot
    a = rotation.shifts.filter(user=user_a, slot__gt=current + 1).order_by("slot").first()
    b = rotation.shifts.filter(user=user_b, slot__gt=current + 1).order_by("slot").first()
    return a.slot, b.slot


def test_swap_exchanges_two_future_slots_once_both_agree(planned, now):
    a, b = [m.user for m in planned.members.order_by("position")[:2]]
    slot_a, slot_b = _future_slots(planned, now, a, b)
    swap = services.swap_request(
        rotation=planned, requester=a, counterparty=b, requester_slot=slot_a, counterparty_slot=slot_b
    )
    assert planned.shifts.get(slot=slot_a).user == a  # nothing changes before the counterparty agrees
    services.swap_accept(swap=swap, user=b)
    assert planned.shifts.get(slot=slot_a).user == b
    assert planned.shifts.get(slot=slot_b).user == a
    assert planned.shifts.get(slot=slot_a).source == Shift.Source.SWAP
    assert Swap.objects.get(pk=swap.pk).status == Swap.Status.ACCEPTED


def test_swap_accepted_by_someone_else_is_refused(planned, now):
    a, b, c = [m.user for m in planned.members.order_by("position")]
    slot_a, slot_b = _future_slots(planned, now, a, b)
    swap = services.swap_request(
        rotation=planned, requester=a, counterparty=b, requester_slot=slot_a, counterparty_slot=slot_b
    )
    with pytest.raises(DomainError, match="Only the counterparty"):
        services.swap_accept(swap=swap, user=c)


def test_stale_swap_is_refused(planned, now):
    a, b = [m.user for m in planned.members.order_by("position")[:2]]
    slot_a, slot_b = _future_slots(planned, now, a, b)
    swap = services.swap_request(
        rotation=planned, requester=a, counterparty=b, requester_slot=slot_a, counterparty_slot=slot_b
    )
    services.rotation_member_add(rotation=planned, user=UserFactory(username="late-joiner"))  # re-plans the future
    before = _snapshot(planned)
    with pytest.raises(DomainError, match="stale") as excinfo:
        services.swap_accept(swap=swap, user=b)
    assert excinfo.value.code == "stale_swap"
    assert _snapshot(planned) == before
    assert Swap.objects.get(pk=swap.pk).status == Swap.Status.PENDING


def test_swap_of_a_slot_not_held_by_the_requester_is_a_validation_error(planned, now):
    a, b = [m.user for m in planned.members.order_by("position")[:2]]
    slot_a, slot_b = _future_slots(planned, now, a, b)
    with pytest.raises(ValidationError):
        services.swap_request(
            rotation=planned, requester=a, counterparty=b, requester_slot=slot_b, counterparty_slot=slot_a
        )


def test_swapped_slots_survive_regeneration(planned, now):
    a, b = [m.user for m in planned.members.order_by("position")[:2]]
    slot_a, slot_b = _future_slots(planned, now, a, b)
    swap = services.swap_request(
        rotation=planned, requester=a, counterparty=b, requester_slot=slot_a, counterparty_slot=slot_b
    )
    services.swap_accept(swap=swap, user=b)
    services.rotation_generate(rotation=planned)
    assert planned.shifts.get(slot=slot_a).user == b


def test_unavailability_applies_to_all_rotations(make_rotation, now):
    first = make_rotation(2, **DAILY)
    second = make_rotation(0, **DAILY)
    person = first.members.first().user
    RotationMemberFactory(rotation=second, user=person, position=0)
    RotationMemberFactory(rotation=second, user=UserFactory(), position=1)
    services.rotation_generate(rotation=first)
    services.rotation_generate(rotation=second)
    start = now + timedelta(days=3)
    services.unavailability_create(
        user=person, start=start, end=start + timedelta(days=5), kind=Unavailability.Kind.SICK
    )
    for rotation in (first, second):
        assert not rotation.shifts.filter(user=person, period__overlap=(start, start + timedelta(days=5))).exists()


def test_swapped_slot_with_an_override_at_its_start_survives_regeneration(planned, now):
    a, b = [m.user for m in planned.members.order_by("position")[:2]]
    slot_a, slot_b = _future_slots(planned, now, a, b)
    swap = services.swap_request(
        rotation=planned, requester=a, counterparty=b, requester_slot=slot_a, counterparty_slot=slot_b
    )
    services.swap_accept(swap=swap, user=b)
    start = planned.shifts.filter(slot=slot_a).order_by("period").first().period.lower
    services.override_create(rotation=planned, user=UserFactory(), start=start, end=start + timedelta(hours=2))
    services.rotation_member_add(rotation=planned, user=UserFactory(username="joiner"))
    plan_rows = planned.shifts.filter(slot=slot_a).exclude(source=Shift.Source.OVERRIDE)
    assert {r.user_id for r in plan_rows} == {b.pk}


RAW = ("+00:00", "None", "(primary)", "T12:", "Range(", "[20")


def _readable(message: str) -> str:
    for raw in RAW:
        assert raw not in message, message
    return message


def test_on_call_messages_name_periods_in_the_rotation_zone_never_raw_values(planned, make_rotation, now):
    from oncall.models import ScheduleIssue

    berlin = "CEST to "
    holder = planned.shifts.get(period__contains=now).user
    with pytest.raises(DomainError) as frozen:
        services.unavailability_create(user=holder, start=now, end=now + timedelta(days=3))
    assert berlin in _readable(frozen.value.message)
    assert "(Europe/Berlin)" in frozen.value.message
    with pytest.raises(DomainError) as removal:
        services.rotation_member_remove(member=planned.members.get(user=holder))
    assert berlin in _readable(removal.value.message)
    away = UserFactory(username="away")
    services.unavailability_create(user=away, start=now + timedelta(days=1), end=now + timedelta(days=2))
    with pytest.raises(DomainError) as unavailable:
        services.override_create(
            rotation=planned, user=away, start=now + timedelta(hours=30), end=now + timedelta(hours=31)
        )
    assert "from Thu 2026-06-11 14:00 CEST to Fri 2026-06-12 14:00 CEST (Europe/Berlin)" in _readable(
        unavailable.value.message
    )
    with pytest.raises(DomainError) as too_long:
        services.override_create(
            rotation=planned, user=UserFactory(), start=now + timedelta(days=3), end=now + timedelta(days=12)
        )
    assert berlin in _readable(too_long.value.message)
    assert too_long.value.field == "end"
    single = make_rotation(1, **DAILY, min_rest=timedelta(hours=30))
    services.rotation_generate(rotation=single)
    for issue in ScheduleIssue.objects.filter(rotation=single):
        assert berlin in _readable(issue.message)
    assert ScheduleIssue.objects.filter(rotation=single, message__contains="Less than 1 day 6 h of rest").exists()
    override = services.override_create(
        rotation=planned, user=UserFactory(username="cover"), start=now + timedelta(days=4), end=now + timedelta(days=5)
    )
    assert _readable(str(override)).startswith("cover covers ")
    assert "(Primary)" in str(planned)
    assert _readable(str(Unavailability.objects.get(user=away))).startswith("away: Vacation from ")
    for note in Notification.objects.filter(payload__kind__in=["schedule_changed", "schedule_gap"]):
        _readable(note.subject + note.body)
