from datetime import timedelta

from icalendar import Calendar

from oncall import services
from oncall.ical import shift_uid
from oncall.models import Rotation
from tests.oncall.factories import UserFactory

DAILY = {"unit": Rotation.Unit.DAILY, "handoff_weekday": None, "timezone": "Europe/Berlin"}


def _events(client, url):
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/calendar")
    return {str(e["uid"]): e for e in Calendar.from_ical(response.content).walk("VEVENT")}


def test_rotation_feed_matches_the_shifts_in_the_database(client, make_rotation, now):
    rotation = make_rotation(3, **DAILY)
    services.rotation_generate(rotation=rotation)
    events = _events(client, f"/ical/rotations/{rotation.ical_token}.ics")
    shifts = list(rotation.shifts.all())
    assert set(events) == {shift_uid(s) for s in shifts}
    for shift in shifts:
        event = events[shift_uid(shift)]
        assert event.decoded("dtstart") == shift.period.lower
        assert event.decoded("dtend") == shift.period.upper
        assert event.decoded("dtstart").utcoffset() == timedelta(0)
        assert int(event["sequence"]) == shift.sequence
        assert str(shift.user) in str(event["summary"])


def test_replanned_shift_keeps_its_uid_and_its_sequence_grows(client, make_rotation, now):
    rotation = make_rotation(3, **DAILY)
    services.rotation_generate(rotation=rotation)
    before = _events(client, f"/ical/rotations/{rotation.ical_token}.ics")
    services.rotation_member_add(rotation=rotation, user=UserFactory())
    after = _events(client, f"/ical/rotations/{rotation.ical_token}.ics")
    changed = [uid for uid in after if uid in before and after[uid]["summary"] != before[uid]["summary"]]
    assert changed
    assert all(int(after[uid]["sequence"]) > int(before[uid]["sequence"]) for uid in changed)


def test_person_feed_lists_only_their_shifts(client, make_rotation, now):
    rotation = make_rotation(3, **DAILY)
    services.rotation_generate(rotation=rotation)
    person = rotation.members.first().user
    feed = services.calendar_feed_get_or_create(user=person)
    events = _events(client, f"/ical/people/{feed.token}.ics")
    assert set(events) == {shift_uid(s) for s in rotation.shifts.filter(user=person)}


def test_unknown_or_rotated_token_is_404(client, make_rotation, now):
    rotation = make_rotation(1, **DAILY)
    old = rotation.ical_token
    services.rotation_rotate_ical_token(rotation=rotation)
    assert client.get(f"/ical/rotations/{old}.ics").status_code == 404
    assert client.get(f"/ical/rotations/{rotation.ical_token}.ics").status_code == 200
    assert len(rotation.ical_token) >= 40


def test_personal_feed_url_via_api_and_rotation(responder_api, responder, make_rotation, now):
    first = responder_api.get("/api/v1/calendar-feed/").json()["url"]
    assert "/ical/people/" in first
    rotated = responder_api.post("/api/v1/calendar-feed/").json()["url"]
    assert rotated != first
    path = rotated.split("testserver", 1)[1]
    assert responder_api.get(path).status_code == 200
    assert responder_api.get(first.split("testserver", 1)[1]).status_code == 404
