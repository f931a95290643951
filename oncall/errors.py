"""Errors every layer's services raise. The API turns them into 400 (ValidationError) and 409 (DomainError)."""

from __future__ import annotations


class DomainError(Exception):
    """A refused business action: the request was well-formed but the state does not allow it."""

    def __init__(self, message: str, *, code: str = "conflict", field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.field = field
