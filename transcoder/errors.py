"""The transcoder's errors: each carries one plain sentence an artist can read."""

from __future__ import annotations


class TranscodeError(Exception):
    """Base of every error the transcoder raises on purpose.

    ``message`` is one sentence meant for the artist who uploaded the file; technical
    details go to the logger, never into the message.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InputRefused(TranscodeError):
    """The input itself is unusable or over a limit: retrying will not help."""


class TranscodeFailed(TranscodeError):
    """Processing broke down (crash, timeout, internal error): a retry may help."""
