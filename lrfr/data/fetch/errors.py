"""The errors of fetching and unpacking; each message names the file and the cause."""

from __future__ import annotations

class FetchError(RuntimeError):
    """A download, verification or unpacking step failed; the message names the file and the cause."""


class ChecksumError(FetchError):
    """A file's size or checksum differs from the published one."""


class UnverifiedError(FetchError):
    """No checksum is published for a file and the caller did not pass ``accept_unverified``."""


class UnsafeArchiveError(FetchError):
    """An archive member would be written outside the target folder (zip-slip) or is a link/device."""
