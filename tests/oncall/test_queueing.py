"""The publisher behind enqueue_on_commit: messages go out from a background thread, never from the caller's,
and after a failed publish the next ones are dropped at once (the sweeps re-queue their work) for a pause."""

import threading

import pytest

from oncall.queueing import Publisher, enqueue_on_commit
from oncall.tasks import deliver_notification_task


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class Broker:
    """The outside world: records what is published, and fails while `down`."""

    def __init__(self):
        self.down = False
        self.published = []
        self.threads = set()

    def apply_async(self, args=None, countdown=None, **kwargs):
        self.threads.add(threading.get_ident())
        if self.down:
            raise ConnectionRefusedError("broker unreachable")
        self.published.append((tuple(args), countdown))


@pytest.fixture
def broker(monkeypatch):
    broker = Broker()
    monkeypatch.setattr(deliver_notification_task, "apply_async", broker.apply_async)
    return broker


def test_after_a_failed_publish_messages_are_dropped_at_once_until_the_pause_ends(broker):
    clock = Clock()
    publisher = Publisher(pause_seconds=10, clock=clock)
    broker.down = True
    assert publisher.publish(deliver_notification_task, (1,)) is False
    broker.down = False  # back, but the pause is not over: dropped without trying
    assert publisher.publish(deliver_notification_task, (2,)) is False
    assert broker.published == []

    clock.now += 10
    assert publisher.publish(deliver_notification_task, (3,), countdown=5) is True
    assert publisher.publish(deliver_notification_task, (4,)) is True
    assert broker.published == [((3,), 5), ((4,), None)]


def test_submitted_messages_are_published_by_the_background_thread_in_order(broker):
    publisher = Publisher()
    for notification_id in range(5):
        assert publisher.submit(deliver_notification_task, (notification_id,)) is True
    assert publisher.flush(timeout=10)
    assert broker.published == [((n,), None) for n in range(5)]
    assert threading.get_ident() not in broker.threads


def test_a_full_queue_drops_instead_of_blocking(broker, monkeypatch):
    release = threading.Event()
    publisher = Publisher(max_pending=2)
    monkey = broker.apply_async

    def hung(args=None, countdown=None, **kwargs):
        release.wait(timeout=30)
        monkey(args, countdown)

    monkeypatch.setattr(deliver_notification_task, "apply_async", hung)
    accepted = [publisher.submit(deliver_notification_task, (n,)) for n in range(6)]
    release.set()
    assert publisher.flush(timeout=10)
    assert accepted.count(False) >= 3  # the thread holds one, the queue two: the rest are dropped, not waited for
    assert len(broker.published) == accepted.count(True)


def test_enqueue_on_commit_publishes_after_commit_from_another_thread(db, broker, django_capture_on_commit_callbacks):
    from oncall.queueing import publisher

    with django_capture_on_commit_callbacks(execute=True):
        enqueue_on_commit(deliver_notification_task, 42, countdown=30)
        assert broker.published == []  # not before the commit
    assert publisher.flush(timeout=10)
    assert broker.published == [((42,), 30)]
    assert threading.get_ident() not in broker.threads
