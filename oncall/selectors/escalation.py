"""Escalation: who is paged at step k at time t, and who is next."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Prefetch, QuerySet

from oncall.models import EscalationPolicy, EscalationStep, EscalationTarget, Shift, TeamMembership
from oncall.selectors.schedule import current_shifts, next_shift_after, next_shifts


def policies_with_steps() -> QuerySet:
    return EscalationPolicy.objects.select_related("team").prefetch_related(
        Prefetch(
            "steps",
            queryset=EscalationStep.objects.order_by("position", "id").prefetch_related(
                Prefetch("targets", queryset=EscalationTarget.objects.select_related("rotation", "user"))
            ),
        )
    )


@dataclass
class ResolvedStep:
    index: int  # 0-based over the repeated chain
    position: int
    delay_minutes: int
    starts_after: timedelta  # from the start of escalation; a step with nobody is skipped at once
    users: list = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not self.users


class TargetResolver:
    """Resolves targets of many policies at one instant in a fixed number of queries (three), so the API and
    admin lists do not grow a query per step."""

    def __init__(self, policies: list[EscalationPolicy], at: datetime) -> None:
        self.at = at
        targets = [t for p in policies for s in p.steps.all() for t in s.targets.all()]
        rotation_ids = {t.rotation_id for t in targets if t.rotation_id}
        team_ids = {
            p.team_id
            for p in policies
            if any(t.kind == EscalationTarget.Kind.TEAM_MANAGERS for s in p.steps.all() for t in s.targets.all())
        }
        self.current: dict[int, Shift] = {}
        self.following: dict[int, Shift] = {}
        self.managers: dict[int, list] = {team_id: [] for team_id in team_ids}
        if rotation_ids:
            self.current = current_shifts(rotation_ids=sorted(rotation_ids), at=at)
            self.following = next_shifts(rotation_ids=sorted(rotation_ids), current=self.current, at=at, fallback=False)
        if team_ids:
            memberships = TeamMembership.objects.filter(team_id__in=team_ids, role=TeamMembership.Role.MANAGER)
            for membership in memberships.select_related("user").order_by("user__username"):
                self.managers[membership.team_id].append(membership.user)

    def resolve(self, target: EscalationTarget, policy: EscalationPolicy) -> list:
        if target.kind == EscalationTarget.Kind.USER:
            return [target.user]
        if target.kind == EscalationTarget.Kind.TEAM_MANAGERS:
            return list(self.managers.get(policy.team_id, []))
        if target.kind == EscalationTarget.Kind.ROTATION_CURRENT:
            shift = self.current.get(target.rotation_id)
        else:
            shift = self.following.get(target.rotation_id)
            if shift is None:  # nothing different within the window: ask without one
                shift = next_shift_after(rotation_id=target.rotation_id, at=self.at)
        return [shift.user] if shift is not None and shift.user is not None else []  # a gap is nobody


def _with_steps(policy: EscalationPolicy) -> EscalationPolicy:
    """The policy with its steps and targets prefetched (two more queries), unless they already are: a chain
    then costs the same number of queries whatever its number of steps and targets."""
    if "steps" in getattr(policy, "_prefetched_objects_cache", {}):
        return policy
    return policies_with_steps().get(pk=policy.pk)


def _steps(policy: EscalationPolicy) -> list[EscalationStep]:
    return sorted(policy.steps.all(), key=lambda s: (s.position, s.pk))


def escalation_chain(
    *, policy: EscalationPolicy, at: datetime, resolver: TargetResolver | None = None
) -> list[ResolvedStep]:
    """The whole chain (steps × (repeat + 1)) with the people each step pages at `at`.

    A step whose targets resolve to nobody (a gap) has no wait: the next step starts at once. Pass a
    `TargetResolver` built for many policies to resolve them all in a fixed number of queries."""
    policy = _with_steps(policy)
    resolver = resolver or TargetResolver([policy], at)
    steps = _steps(policy)
    resolved_once = []
    for step in steps:
        users: list = []
        for target in step.targets.all():
            for user in resolver.resolve(target, policy):
                if user not in users:
                    users.append(user)
        resolved_once.append((step, users))
    chain: list[ResolvedStep] = []
    elapsed = timedelta(0)
    for round_ in range(policy.repeat + 1):
        for i, (step, users) in enumerate(resolved_once):
            chain.append(
                ResolvedStep(
                    index=round_ * len(steps) + i,
                    position=step.position,
                    delay_minutes=step.delay_minutes,
                    starts_after=elapsed,
                    users=list(users),
                )
            )
            if users:
                elapsed += timedelta(minutes=step.delay_minutes)
    return chain


def escalation_paged_at(*, policy: EscalationPolicy, step: int, at: datetime) -> list:
    """Who is paged at step `step` (0-based, counting repeats) at time `at`; [] past the end or for a gap."""
    policy = _with_steps(policy)
    steps = _steps(policy)
    if not steps or step < 0 or step >= len(steps) * (policy.repeat + 1):
        return []
    return escalation_chain(policy=policy, at=at)[step].users


def escalation_next_step(*, policy: EscalationPolicy, after: int, at: datetime) -> ResolvedStep | None:
    """The first step after step `after` that pages somebody (gaps are skipped); None when the chain ends."""
    for resolved in escalation_chain(policy=policy, at=at)[after + 1 :]:
        if not resolved.is_empty:
            return resolved
    return None
