"""Every write of the oncall app. Split by topic; everything is importable from `oncall.services`."""

from oncall import channels  # the delivery senders, reachable as `services.channels` as before the split
from oncall.services.generation import GenerationResult, frozen_until, rotation_generate
from oncall.services.handoffs import handoffs_process, handoffs_process_rotation, reminders_send
from oncall.services.notifications import (
    contact_method_save,
    notification_deliver,
    notification_enqueue,
    notification_retry,
    register_failure_listener,
)
from oncall.services.schedule import (
    calendar_feed_get_or_create,
    calendar_feed_rotate,
    frozen_shift_of,
    override_cancel,
    override_create,
    rotation_member_add,
    rotation_member_remove,
    rotation_members_reorder,
    rotation_rotate_ical_token,
    rotation_save,
    rotations_generate_all,
    swap_accept,
    swap_decline,
    swap_request,
    unavailability_create,
    unavailability_delete,
)

__all__ = [
    "register_failure_listener",
    "channels",
    "contact_method_save",
    "calendar_feed_get_or_create",
    "calendar_feed_rotate",
    "GenerationResult",
    "handoffs_process",
    "handoffs_process_rotation",
    "notification_deliver",
    "notification_enqueue",
    "notification_retry",
    "override_cancel",
    "override_create",
    "reminders_send",
    "frozen_shift_of",
    "frozen_until",
    "rotation_generate",
    "rotation_member_add",
    "rotation_member_remove",
    "rotation_members_reorder",
    "rotation_rotate_ical_token",
    "rotation_save",
    "rotations_generate_all",
    "swap_accept",
    "swap_decline",
    "swap_request",
    "unavailability_create",
    "unavailability_delete",
]
