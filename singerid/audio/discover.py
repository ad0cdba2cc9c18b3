"""Which audio files a batch means: files, folders (recursive), glob patterns and list files.

Order is the order given, folders and glob matches sorted by path. Nothing is dropped
silently: a path that does not exist, or a pattern that matches nothing, is still yielded so
that the caller reports it as a failure of that input and goes on with the rest.
"""

from __future__ import annotations

import glob
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from singerid import constants as C
from singerid.errors import ParameterError

GLOB_CHARS = frozenset("*?[")
MAX_DEPTH = 64  # folder levels followed below a given folder


def expand_audio_inputs(items: Iterable[str | Path], *, list_file: str | Path | None = None) -> Iterator[Path]:
    """Yield the audio files that ``items`` (and the lines of ``list_file``) name, in order.

    A folder yields its audio files (by extension: {exts}) at any depth, hidden entries and
    symlink loops skipped; a pattern with * ? [ is expanded (``**`` crosses folders); anything
    else is yielded as given. ``list_file``: one path or pattern per line, ``#`` comments and
    blank lines ignored, "-" reads standard input. Raises ParameterError for an unreadable list.
    """
    for item in [*items, *(_read_list(list_file) if list_file is not None else [])]:
        text = str(item)
        path = Path(text)
        if path.is_dir():
            yield from _walk(path)
        elif not path.exists() and GLOB_CHARS & set(text):
            matches = sorted(glob.glob(text, recursive=True))
            if not matches:
                yield path  # reported by the caller: no such file
            for match in matches:
                found = Path(match)
                if found.is_dir():
                    yield from _walk(found)
                elif _is_audio(found.name):
                    yield found
        else:
            yield path


expand_audio_inputs.__doc__ = (expand_audio_inputs.__doc__ or "").replace("{exts}", " ".join(C.AUDIO_EXTENSIONS))


def _read_list(list_file: str | Path) -> list[str]:
    try:
        if str(list_file) == "-":
            text = sys.stdin.read()
        else:
            text = Path(list_file).read_text(encoding="utf-8", errors="surrogateescape")
    except OSError as exc:
        raise ParameterError(f"cannot read list file {list_file}: {exc.strerror or exc}") from None
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _walk(top: Path) -> Iterator[Path]:
    """Audio files under ``top`` in path order (a folder's entries by name, depth first),
    following folder symlinks once (loops skipped)."""
    yield from _walk_into(top, 0, set())


def _walk_into(here: Path, depth: int, seen: set[tuple[int, int]]) -> Iterator[Path]:
    try:
        st = here.stat()
        if (st.st_dev, st.st_ino) in seen:
            return
        seen.add((st.st_dev, st.st_ino))
        with os.scandir(here) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError:
        yield here  # unreadable folder: the caller reports it
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            is_dir = entry.is_dir()
        except OSError:
            continue
        if is_dir:
            if depth < MAX_DEPTH:
                yield from _walk_into(Path(entry.path), depth + 1, seen)
        elif _is_audio(entry.name):
            yield Path(entry.path)


def _is_audio(name: str) -> bool:
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in C.LISTED_AUDIO_EXTENSIONS
