"""Hooks through which higher layers give oncall what it must not import (DESIGN.md: layers).

The incidents app registers, in its `AppConfig.ready()`, a function returning a team's open incidents;
handoff messages list them. Until then the default provider returns nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class OpenIncident:
    ref: str
    title: str
    severity: str
    url: str = ""


OpenIncidentsProvider = Callable[[int], list[OpenIncident]]

_open_incidents_providers: list[OpenIncidentsProvider] = []


def register_open_incidents_provider(provider: OpenIncidentsProvider) -> None:
    """`provider(team_id)` returns the open incidents of the team's services."""
    if provider not in _open_incidents_providers:
        _open_incidents_providers.append(provider)


def unregister_open_incidents_provider(provider: OpenIncidentsProvider) -> None:
    if provider in _open_incidents_providers:
        _open_incidents_providers.remove(provider)


def open_incidents(team_id: int) -> list[OpenIncident]:
    incidents: list[OpenIncident] = []
    for provider in _open_incidents_providers:
        incidents.extend(provider(team_id))
    return incidents
