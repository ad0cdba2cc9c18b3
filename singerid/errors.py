"""The one exception hierarchy of singerid.

The library raises only these (wrapping the cause); ``singerid.cli`` turns them into a
one-line ``Error: ...`` on stderr and the exit code below.
"""


class SingeridError(Exception):
    """Root of every error singerid raises on purpose. Exit code 1."""

    exit_code = 1


class ParameterError(SingeridError, ValueError):
    """A bad value from the caller (argument, option, config). Exit code 2 (usage)."""

    exit_code = 2


class AudioError(SingeridError):
    """Audio that cannot be used: missing, unreadable, corrupt, silent, too short, non-finite."""


class DatasetError(SingeridError):
    """A dataset directory that matches no known layout, has an empty singer or a bad split."""


class ArtefactError(SingeridError):
    """A model, index, store or manifest that is missing, mismatched or tampered with."""
