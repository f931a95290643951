from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError
from django.db.backends.postgresql.psycopg_any import DateTimeTZRange

from oncall.models import EscalationPolicy, EscalationStep, EscalationTarget, Override, Rotation, Shift, Swap
from tests.oncall.factories import RotationFactory, TeamFactory, UserFactory

T0 = datetime(2026, 6, 1, 7, 0, tzinfo=UTC)


def _shift(rotation, user, start, hours, *, key, slot=0):
    return Shift.objects.create(
        rotation=rotation,
        slot=slot,
        key=key,
        user=user,
        planned_user=user,
        period=DateTimeTZRange(start, start + timedelta(hours=hours)),
    )


def test_shift_overlap_in_rotation_refused_by_database(db):
    rotation = RotationFactory()
    _shift(rotation, UserFactory(), T0, 24, key="a")
    with pytest.raises(IntegrityError, match="oncall_shift_no_overlap_in_rotation"):
        _shift(rotation, UserFactory(), T0 + timedelta(hours=23), 24, key="b", slot=1)


def test_adjacent_shifts_are_allowed(db):
    rotation = RotationFactory()
    _shift(rotation, UserFactory(), T0, 24, key="a")
    _shift(rotation, UserFactory(), T0 + timedelta(hours=24), 24, key="b", slot=1)
    assert Shift.objects.count() == 2


def test_primary_and_secondary_at_once_refused_by_database(db):
    team = TeamFactory()
    primary = RotationFactory(team=team, layer=Rotation.Layer.PRIMARY)
    secondary = RotationFactory(team=team, layer=Rotation.Layer.SECONDARY)
    person = UserFactory()
    _shift(primary, person, T0, 24, key="a")
    with pytest.raises(IntegrityError, match="oncall_shift_no_primary_and_secondary"):
        _shift(secondary, person, T0 + timedelta(hours=12), 24, key="b")


def test_same_person_on_two_teams_is_allowed(db):
    person = UserFactory()
    _shift(RotationFactory(layer=Rotation.Layer.PRIMARY), person, T0, 24, key="a")
    _shift(RotationFactory(layer=Rotation.Layer.SECONDARY), person, T0, 24, key="a")
    assert Shift.objects.filter(user=person).count() == 2


def test_gap_shift_must_have_no_user(db):
    rotation = RotationFactory()
    with pytest.raises(IntegrityError, match="oncall_shift_gap_has_no_user"):
        Shift.objects.create(
            rotation=rotation,
            slot=0,
            key="a",
            user=UserFactory(),
            source=Shift.Source.GAP,
            period=DateTimeTZRange(T0, T0 + timedelta(hours=1)),
        )


def test_rotation_slot_longer_than_a_week_refused(db):
    with pytest.raises(IntegrityError, match="oncall_rotation_slot_at_most_7_days"):
        RotationFactory(unit=Rotation.Unit.DAILY, count=8)


def test_rotation_max_consecutive_days_above_seven_refused(db):
    with pytest.raises(IntegrityError, match="oncall_rotation_max_consecutive_days_1_7"):
        RotationFactory(max_consecutive_days=8)


def test_overlapping_active_overrides_refused_by_database(db):
    rotation = RotationFactory()
    Override.objects.create(rotation=rotation, user=UserFactory(), period=DateTimeTZRange(T0, T0 + timedelta(hours=5)))
    with pytest.raises(IntegrityError, match="oncall_override_no_overlap"):
        Override.objects.create(
            rotation=rotation, user=UserFactory(), period=DateTimeTZRange(T0, T0 + timedelta(hours=2))
        )


def test_swap_with_oneself_refused(db):
    person = UserFactory()
    with pytest.raises(IntegrityError, match="oncall_swap_two_people"):
        Swap.objects.create(
            rotation=RotationFactory(), requester=person, counterparty=person, requester_slot=1, counterparty_slot=2
        )


def test_escalation_step_delay_out_of_range_refused(db):
    policy = EscalationPolicy.objects.create(team=TeamFactory(), name="p")
    with pytest.raises(IntegrityError, match="oncall_escalationstep_delay_1_1440"):
        EscalationStep.objects.create(policy=policy, position=0, delay_minutes=1441)


def test_escalation_policy_repeat_above_five_refused(db):
    with pytest.raises(IntegrityError, match="oncall_escalationpolicy_repeat_0_5"):
        EscalationPolicy.objects.create(team=TeamFactory(), name="p", repeat=6)


def test_escalation_target_without_its_rotation_refused(db):
    policy = EscalationPolicy.objects.create(team=TeamFactory(), name="p")
    step = EscalationStep.objects.create(policy=policy, position=0)
    with pytest.raises(IntegrityError, match="oncall_escalationtarget_fields_match_kind"):
        EscalationTarget.objects.create(step=step, kind=EscalationTarget.Kind.ROTATION_CURRENT)


def test_rotation_name_unique_per_team(db):
    rotation = RotationFactory()
    with pytest.raises(IntegrityError, match="oncall_rotation_unique_name"):
        RotationFactory(team=rotation.team, name=rotation.name)


def test_rotation_member_once_per_rotation(db):
    from oncall.models import RotationMember

    rotation, person = RotationFactory(), UserFactory()
    RotationMember.objects.create(rotation=rotation, user=person, position=0)
    with pytest.raises(IntegrityError, match="oncall_rotationmember_unique_user"):
        RotationMember.objects.create(rotation=rotation, user=person, position=1)


def test_rotation_member_active_until_after_active_from(db):
    from oncall.models import RotationMember

    with pytest.raises(IntegrityError, match="oncall_rotationmember_active_order"):
        RotationMember.objects.create(
            rotation=RotationFactory(), user=UserFactory(), active_from=T0, active_until=T0 - timedelta(days=1)
        )


def test_shift_key_unique_per_rotation(db):
    rotation = RotationFactory()
    _shift(rotation, UserFactory(), T0, 1, key="a")
    with pytest.raises(IntegrityError, match="oncall_shift_unique_key"):
        _shift(rotation, UserFactory(), T0 + timedelta(days=1), 1, key="a")


def test_shift_period_cannot_be_empty(db):
    with pytest.raises(IntegrityError, match="oncall_shift_period_not_empty"):
        _shift(RotationFactory(), UserFactory(), T0, 0, key="a")


def test_unavailability_period_cannot_be_empty(db):
    from oncall.models import Unavailability

    with pytest.raises(IntegrityError, match="oncall_unavailability_not_empty"):
        Unavailability.objects.create(user=UserFactory(), period=DateTimeTZRange(T0, T0))


def test_holiday_once_per_date(db):
    from oncall.models import Holiday, HolidayCalendar

    calendar = HolidayCalendar.objects.create(name="Example")
    Holiday.objects.create(calendar=calendar, date=T0.date(), name="one")
    with pytest.raises(IntegrityError, match="oncall_holiday_unique_date"):
        Holiday.objects.create(calendar=calendar, date=T0.date(), name="two")


def test_handoff_once_per_rotation_and_boundary(db):
    from oncall.models import Handoff

    rotation = RotationFactory()
    Handoff.objects.create(rotation=rotation, boundary_at=T0, kind="handoff", status="notified")
    with pytest.raises(IntegrityError, match="oncall_handoff_unique_boundary"):
        Handoff.objects.create(rotation=rotation, boundary_at=T0, kind="handoff", status="notified")


def test_escalation_step_position_unique_per_policy(db):
    team = TeamFactory()
    policy = EscalationPolicy.objects.create(team=team, name="p")
    EscalationStep.objects.create(policy=policy, position=0)
    with pytest.raises(IntegrityError, match="oncall_escalationstep_unique_position"):
        EscalationStep.objects.create(policy=policy, position=0)


def test_escalation_policy_name_unique_per_team(db):
    team = TeamFactory()
    EscalationPolicy.objects.create(team=team, name="p")
    with pytest.raises(IntegrityError, match="oncall_escalationpolicy_unique_name"):
        EscalationPolicy.objects.create(team=team, name="p")
