"""Reads that do work. Split by topic; everything is importable from `oncall.selectors`."""

from oncall.selectors.escalation import (
    ResolvedStep,
    TargetResolver,
    escalation_chain,
    escalation_next_step,
    escalation_paged_at,
    policies_with_steps,
)
from oncall.selectors.fairness import FairnessReport, MemberFairness, fairness_csv, fairness_report
from oncall.selectors.notifications import notifications_due, team_managers
from oncall.selectors.schedule import (
    OnCallEntry,
    current_shifts,
    holder_at,
    next_shift_after,
    next_shifts,
    oncall_now,
    override_cancel_refusal,
    override_refusal,
    shift_at,
    shifts_in_range,
)

__all__ = [
    "FairnessReport",
    "MemberFairness",
    "fairness_csv",
    "fairness_report",
    "OnCallEntry",
    "ResolvedStep",
    "TargetResolver",
    "current_shifts",
    "escalation_chain",
    "escalation_next_step",
    "escalation_paged_at",
    "holder_at",
    "next_shift_after",
    "next_shifts",
    "notifications_due",
    "oncall_now",
    "override_cancel_refusal",
    "override_refusal",
    "policies_with_steps",
    "shift_at",
    "shifts_in_range",
    "team_managers",
]
