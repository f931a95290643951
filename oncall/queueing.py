"""Queue a Celery task after the current transaction commits, without the request ever waiting on the broker.

The rows are the source of truth; every queued task has a periodic sweep that finds work whose task was never
delivered (notifications, escalation steps, flap delays, automation runs, response preparation). Publishing is
therefore best effort and off the request path: after commit the message is handed to this process's publisher
thread and the request goes on. A publish that fails (broker down: the connection attempts and their retries
take a second or more) pauses publishing for `PAUSE_SECONDS`: messages submitted meanwhile are dropped at once
(logged), and the sweeps queue their work when the broker is back, instead of each one waiting its turn to fail.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import time

from django.db import transaction

logger = logging.getLogger(__name__)

PAUSE_SECONDS = 10.0
MAX_PENDING = 10_000


class Publisher:
    """One per process: a queue of messages and a daemon thread publishing them in order."""

    def __init__(self, *, pause_seconds: float = PAUSE_SECONDS, max_pending: int = MAX_PENDING, clock=time.monotonic):
        self.pause_seconds = pause_seconds
        self.max_pending = max_pending
        self.clock = clock
        self.paused_until: float | None = None
        self._queue: queue.Queue = queue.Queue(maxsize=max_pending)
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._start_lock = threading.Lock()

    def submit(self, task, args=(), countdown: float | None = None) -> bool:
        """Hand a message to the publisher thread; never blocks. False when it is dropped (queue full)."""
        self._ensure_thread()
        try:
            self._queue.put_nowait((task, tuple(args), countdown))
        except queue.Full:
            logger.warning("publisher queue full: %s%r not queued now; the periodic sweep will", task.name, args)
            return False
        return True

    def publish(self, task, args=(), countdown: float | None = None) -> bool:
        """Publish one message in the calling thread (the publisher thread's job). False when not published."""
        if self.paused_until is not None and self.clock() < self.paused_until:
            logger.info("broker unavailable: %s%r not queued now; the periodic sweep will", task.name, args)
            return False
        try:
            task.apply_async(tuple(args), countdown=countdown)
        except Exception:  # noqa: BLE001 - any broker failure: the committed row stays, the sweep retries
            self.paused_until = self.clock() + self.pause_seconds
            logger.warning(
                "broker unavailable: %s%r not queued now; the periodic sweep will (publishing paused for %ss)",
                task.name,
                args,
                self.pause_seconds,
                exc_info=True,
            )
            return False
        self.paused_until = None
        return True

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every submitted message is published or dropped (at process exit, and in tests)."""
        deadline = time.monotonic() + timeout
        with self._queue.all_tasks_done:
            while self._queue.unfinished_tasks:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._queue.all_tasks_done.wait(remaining)
        return True

    def resume(self) -> None:
        """Forget an earlier failure: the next message is tried at once."""
        self.paused_until = None

    def _ensure_thread(self) -> None:
        if self._pid == os.getpid() and self._thread is not None and self._thread.is_alive():
            return
        with self._start_lock:
            if self._pid == os.getpid() and self._thread is not None and self._thread.is_alive():
                return
            if self._pid != os.getpid():  # a forked child: the parent's thread and queue are not running here
                self._queue = queue.Queue(maxsize=self.max_pending)
                self._pid = os.getpid()
            self._thread = threading.Thread(target=self._run, name="firebreak-publisher", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            task, args, countdown = self._queue.get()
            try:
                self.publish(task, args, countdown)
            except Exception:  # noqa: BLE001 - the thread must outlive any one message
                logger.exception("publishing %s%r failed", getattr(task, "name", task), args)
            finally:
                self._queue.task_done()


publisher = Publisher()
atexit.register(publisher.flush)


def publish_soon(task, *args, countdown: float | None = None) -> None:
    """Queue a task now, off the calling thread (already after commit, e.g. inside an on-commit callback)."""
    publisher.submit(task, args, countdown)


def enqueue_on_commit(task, *args, countdown: float | None = None) -> None:
    def publish() -> None:
        publisher.submit(task, args, countdown)

    transaction.on_commit(publish)
