"""Race helpers: run the same call in several threads released together, as separate processes would."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


def at_once(count: int, call: Callable[[], Any]) -> tuple[list[Any], list[BaseException]]:
    """Run `call()` in `count` threads that start together, each on its own database connection (closed after).
    Returns the results of the calls that returned and the exceptions of those that raised."""
    from django.db import connection

    barrier = threading.Barrier(count)
    results: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            results.append(call())
        except BaseException as exc:  # noqa: BLE001 - handed to the test, which asserts on it
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors
