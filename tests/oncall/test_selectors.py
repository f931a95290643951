from datetime import timedelta

from oncall import selectors, services
from oncall.models import EscalationPolicy, EscalationStep, EscalationTarget, Rotation, TeamMembership, Unavailability
from tests.oncall.factories import UserFactory

DAILY = {"unit": Rotation.Unit.DAILY, "handoff_weekday": None, "timezone": "Europe/Berlin"}


def test_holder_at_is_a_lookup_of_the_containing_shift(make_rotation, now):
    rotation = make_rotation(3, **DAILY)
    services.rotation_generate(rotation=rotation)
    shift = rotation.shifts.get(period__contains=now)
    assert selectors.holder_at(rotation_id=rotation.pk, at=now) == shift.user
    assert selectors.holder_at(rotation_id=rotation.pk, at=shift.period.upper) != shift.user
    assert selectors.next_shift_after(rotation_id=rotation.pk, at=now).period.lower == shift.period.upper


def test_oncall_now_runs_a_constant_number_of_queries(make_rotation, now, django_assert_num_queries):
    for _ in range(3):
        services.rotation_generate(rotation=make_rotation(2, **DAILY))
    with django_assert_num_queries(3):
        entries = selectors.oncall_now(at=now)
    assert len(entries) == 3
    assert all(e.holder is not None and e.next_holder is not None and e.until > now for e in entries)
    assert all(e.next_holder != e.holder for e in entries)


def _policy(rotation, *, repeat=0, name="Default"):
    policy = EscalationPolicy.objects.create(team=rotation.team, name=name, repeat=repeat)
    first = EscalationStep.objects.create(policy=policy, position=0, delay_minutes=5)
    EscalationTarget.objects.create(step=first, kind=EscalationTarget.Kind.ROTATION_CURRENT, rotation=rotation)
    second = EscalationStep.objects.create(policy=policy, position=1, delay_minutes=10)
    EscalationTarget.objects.create(step=second, kind=EscalationTarget.Kind.ROTATION_NEXT, rotation=rotation)
    third = EscalationStep.objects.create(policy=policy, position=2, delay_minutes=15)
    EscalationTarget.objects.create(step=third, kind=EscalationTarget.Kind.TEAM_MANAGERS)
    return policy


def test_escalation_paged_at_each_step(make_rotation, now):
    rotation = make_rotation(3, **DAILY)
    services.rotation_generate(rotation=rotation)
    policy = _policy(rotation, repeat=1)
    current = selectors.holder_at(rotation_id=rotation.pk, at=now)
    nxt = selectors.next_shift_after(rotation_id=rotation.pk, at=now).user
    manager = TeamMembership.objects.get(team=rotation.team, role="manager").user
    assert selectors.escalation_paged_at(policy=policy, step=0, at=now) == [current]
    assert selectors.escalation_paged_at(policy=policy, step=1, at=now) == [nxt]
    assert selectors.escalation_paged_at(policy=policy, step=2, at=now) == [manager]
    assert selectors.escalation_paged_at(policy=policy, step=3, at=now) == [current]  # the repeat
    assert selectors.escalation_paged_at(policy=policy, step=6, at=now) == []
    chain = selectors.escalation_chain(policy=policy, at=now)
    assert [c.starts_after for c in chain[:3]] == [timedelta(0), timedelta(minutes=5), timedelta(minutes=15)]


def test_escalation_chain_runs_a_constant_number_of_queries(make_rotation, now, django_assert_num_queries):
    rotations = [make_rotation(2, **DAILY) for _ in range(3)]
    for rotation in rotations:
        services.rotation_generate(rotation=rotation)
    small = _policy(rotations[0])
    large = _policy(rotations[0], repeat=2, name="Large")
    for position, rotation in enumerate(rotations[1:], start=3):
        step = EscalationStep.objects.create(policy=large, position=position, delay_minutes=5)
        for kind in (EscalationTarget.Kind.ROTATION_CURRENT, EscalationTarget.Kind.ROTATION_NEXT):
            EscalationTarget.objects.create(step=step, kind=kind, rotation=rotation)
    small, large = EscalationPolicy.objects.get(pk=small.pk), EscalationPolicy.objects.get(pk=large.pk)

    # the policy, its steps and targets (prefetch), current shifts, next shifts, managers
    with django_assert_num_queries(6):
        assert selectors.escalation_paged_at(policy=small, step=1, at=now) != []
    with django_assert_num_queries(6):
        chain = selectors.escalation_chain(policy=large, at=now)
    assert len(chain) == 5 * 3
    expected = [selectors.holder_at(rotation_id=rotation.pk, at=now) for rotation in rotations[1:]]
    assert chain[3].users == [expected[0], selectors.next_shift_after(rotation_id=rotations[1].pk, at=now).user]
    assert chain[4].users[0] == expected[1]


def test_next_shifts_skip_the_current_holder_and_read_one_row_per_rotation(make_rotation, now):
    weekly = make_rotation(3, unit=Rotation.Unit.DAILY, handoff_weekday=None, timezone="Europe/Berlin")
    services.rotation_generate(rotation=weekly)
    current = selectors.current_shifts(rotation_ids=[weekly.pk], at=now)
    holder = current[weekly.pk].user
    # the holder also takes the next slot (an override), so the next *different* holder comes a slot later
    following = weekly.shifts.filter(period__startswith__gt=now).order_by("period")
    following.filter(pk=following[0].pk).update(user=holder)

    found = selectors.next_shifts(rotation_ids=[weekly.pk], current=current, at=now)

    assert found[weekly.pk].pk == following[1].pk
    assert found[weekly.pk].user != holder
    assert found[weekly.pk] == selectors.next_shift_after(rotation_id=weekly.pk, at=now)


def test_escalation_treats_a_gap_as_nobody_and_moves_on_at_once(make_rotation, now):
    rotation = make_rotation(2, **DAILY)
    services.rotation_generate(rotation=rotation)
    current = rotation.shifts.get(period__contains=now).slot
    gap_slot = rotation.shifts.get(slot=current + 3)
    for member in rotation.members.all():
        Unavailability.objects.create(user=member.user, period=gap_slot.period)
    services.rotation_generate(rotation=rotation)
    at = gap_slot.period.lower + timedelta(hours=1)
    policy = _policy(rotation)
    assert selectors.escalation_paged_at(policy=policy, step=0, at=at) == []
    chain = selectors.escalation_chain(policy=policy, at=at)
    assert chain[1].starts_after == timedelta(0)
    assert selectors.escalation_next_step(policy=policy, after=0, at=at).index == 1


def test_escalation_user_target(make_rotation, now):
    rotation = make_rotation(1, **DAILY)
    policy = EscalationPolicy.objects.create(team=rotation.team, name="Direct")
    step = EscalationStep.objects.create(policy=policy, position=0, delay_minutes=1)
    person = UserFactory()
    EscalationTarget.objects.create(step=step, kind=EscalationTarget.Kind.USER, user=person)
    assert selectors.escalation_paged_at(policy=policy, step=0, at=now) == [person]
