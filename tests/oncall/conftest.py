from datetime import UTC, datetime

import pytest
import time_machine

from oncall.models import Rotation, TeamMembership
from tests.oncall.factories import (
    RotationFactory,
    RotationMemberFactory,
    TeamFactory,
    TeamMembershipFactory,
    UserFactory,
)

# A Wednesday in June, mid-slot for daily 09:00 and weekly Monday 09:00 Berlin rotations.
NOW = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def now():
    with time_machine.travel(NOW, tick=False):
        yield NOW


@pytest.fixture
def make_rotation(db):
    """A rotation with `members` new users (named m0, m1, ... after the rotation) in member order."""

    def make(members: int = 3, *, team=None, with_manager: bool = True, **fields) -> Rotation:
        team = team or TeamFactory()
        if with_manager and not TeamMembership.objects.filter(team=team, role="manager").exists():
            TeamMembershipFactory(
                team=team, role=TeamMembership.Role.MANAGER, user=UserFactory(username=f"mgr-{team.slug}")
            )
        fields.setdefault("anchor_date", NOW.date().replace(day=1))
        rotation = RotationFactory(team=team, **fields)
        for i in range(members):
            RotationMemberFactory(rotation=rotation, user=UserFactory(username=f"r{rotation.pk}m{i}"), position=i)
        return rotation

    return make


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
