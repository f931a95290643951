"""Escalation: who is paged at step k at time t, and who is next."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Prefetch, QuerySet

from oncall.models import EscalationPolicy, EscalationStep, EscalationTarget, TeamMembership
from oncall.selectors.schedule import next_shift_after, shift_at


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


def _resolve_target(target: EscalationTarget, policy: EscalationPolicy, at: datetime) -> list:
    if target.kind == EscalationTarget.Kind.USER:
        return [target.user]
    if target.kind == EscalationTarget.Kind.TEAM_MANAGERS:
        return [
            m.user
            for m in TeamMembership.objects.filter(team_id=policy.team_id, role=TeamMembership.Role.MANAGER)
            .select_related("user")
            .order_by("user__username")
        ]
    if target.kind == EscalationTarget.Kind.ROTATION_CURRENT:
        shift = shift_at(rotation_id=target.rotation_id, at=at)
        return [shift.user] if shift is not None and shift.user is not None else []  # a gap is nobody
    shift = next_shift_after(rotation_id=target.rotation_id, at=at)
    return [shift.user] if shift is not None and shift.user is not None else []


def _steps(policy: EscalationPolicy) -> list[EscalationStep]:
    return sorted(policy.steps.all(), key=lambda s: (s.position, s.pk))


def escalation_chain(*, policy: EscalationPolicy, at: datetime) -> list[ResolvedStep]:
    """The whole chain (steps × (repeat + 1)) with the people each step pages at `at`.

    A step whose targets resolve to nobody (a gap) has no wait: the next step starts at once."""
    steps = _steps(policy)
    resolved_once = []
    for step in steps:
        users: list = []
        for target in step.targets.all():
            for user in _resolve_target(target, policy, at):
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
