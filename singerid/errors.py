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


def printable(text: object) -> str:
    """``text`` safe to show on one terminal line: control characters (newlines, escape sequences)
    and undecodable file-name bytes are written as Python escapes (``\\n``, ``\\x1b``, ``\\udcff``
    -> ``\\xff``); everything else, accents included, is left as it is.

    Use it on every file name that goes into a message or an output line.
    """
    s = str(text)
    if s.isprintable():
        return s
    out = []
    for ch in s:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
            out.append(f"\\x{code - 0xDC00:02x}")
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(ascii(ch)[1:-1])
    return "".join(out)
