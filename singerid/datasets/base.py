"""The ``Dataset`` record every reader returns, and the pieces all readers share.

Readers never decode audio: they list directories (``os.scandir``), read list / split files,
and assign splits with the pure functions of ``singerid.datasets.split``.

Policy on gaps, the same for every reader:
- a folder of a tree layout that holds no audio is not a singer: skipped, with a logged warning;
- a computed split (album 4/1/1, song 8:1:1) needs at least 3 albums (songs) per singer, so
  that every singer has a train, a val and a test part: otherwise ``DatasetError`` naming
  the singer and the count;
- a split read from the dataset's own list / split files is used as given; a singer with no
  song in one of its parts is logged as a warning;
- a file named by a list / split file but missing on disk is a ``DatasetError`` naming it.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from singerid import constants as C
from singerid.datasets.split import assign_split
from singerid.errors import DatasetError, ParameterError, printable
from singerid.records import SPLITS, Split, Track

log = logging.getLogger(__name__)

KINDS = ("artist20", "singer32", "singer60", "folder")
SPLIT_MODES = ("album", "lists", "song")
SELECTIONS = (*SPLITS, "all")
SONG_RATIO = tuple(round(f * 10) for f in C.SONG_SPLIT_FRACTIONS)  # (8, 1, 1): literature's song split
MIN_SPLIT_UNITS = 3  # albums (or songs) a singer needs so that train, val and test are all non-empty
EXPECTED_LAYOUTS = (
    "artist20 (mp3s-32k/<artist>/<album>/<track>.mp3), "
    "singer32/60 (<singer>/<song>.wav or wav_16000/ + *_train.json), "
    "folder (<singer>/[<album>/]<song>.<ext>)"
)


@dataclass(frozen=True, slots=True)
class Dataset:
    """The songs of one dataset directory, each labelled with its singer and split.

    ``tracks`` are sorted by (singer, song_id); the same root, seed and split mode always
    give the same tracks in the same order.
    """

    name: str  # "artist20" | "singer32" | "singer60" | "folder"
    root: Path  # the directory the user named
    layout: str  # which on-disk layout was recognised, human readable
    split_rule: str  # how train / val / test were made, e.g. "album split 4/1/1 per singer (paper), seed 0"
    seed: int  # seed of the computed split (kept also when the split came from files)
    tracks: tuple[Track, ...]

    def singers(self) -> tuple[str, ...]:
        """Singer labels, sorted."""
        return tuple(sorted({t.singer for t in self.tracks}))

    def select(self, split: str) -> tuple[Track, ...]:
        """The tracks of one split ("train", "val", "test") or of all ("all"), in dataset order.

        Raises ParameterError for any other ``split``.
        """
        if split not in SELECTIONS:
            raise ParameterError(f"unknown split {split!r}: use one of {', '.join(SELECTIONS)}")
        if split == "all":
            return self.tracks
        return tuple(t for t in self.tracks if t.split == split)

    def counts(self) -> dict[str, dict[str, int]]:
        """Songs per singer and split: ``{singer: {"train": n, "val": n, "test": n}}``, singers sorted."""
        tally = Counter((t.singer, t.split) for t in self.tracks)
        return {s: {p: tally[(s, p)] for p in SPLITS} for s in self.singers()}

    def summary(self) -> dict:
        """A JSON-ready description: name, root, layout, split rule, seed, counts and totals."""
        counts = self.counts()
        totals = {p: sum(c[p] for c in counts.values()) for p in SPLITS}
        return {
            "dataset": self.name, "root": str(self.root), "layout": self.layout,
            "split_rule": self.split_rule, "seed": self.seed, "n_singers": len(counts),
            "n_songs": len(self.tracks), "totals": totals, "counts": counts,
        }


def check_options(*, kind: str, seed: int, split: str) -> None:
    """Validate the reader options. Raises ParameterError quoting the bad value."""
    if kind != "auto" and kind not in KINDS:
        raise ParameterError(f"unknown dataset kind {kind!r}: use one of auto, {', '.join(KINDS)}")
    if split not in SPLIT_MODES:
        raise ParameterError(f"unknown split mode {split!r}: use one of {', '.join(SPLIT_MODES)}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ParameterError(f"seed must be a non-negative integer, got {seed!r}")


def check_root(root: str | Path) -> Path:
    """``root`` as a Path if it is an existing directory, else DatasetError."""
    path = Path(root)
    if not path.exists():
        raise DatasetError(f"{path}: no such directory")
    if not path.is_dir():
        raise DatasetError(f"{path}: is a file, expected a dataset directory")
    return path


def is_audio(name: str) -> bool:
    """True for a visible file name with an audio extension (case-insensitive).

    Formats singerid cannot decode (.m4a...) count too, so that they are reported as failures
    with advice instead of vanishing from the dataset.
    """
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in C.LISTED_AUDIO_EXTENSIONS


def strip_audio_ext(name: str) -> str:
    """``name`` without a trailing audio extension (``"x.wav"`` -> ``"x"``, ``"x"`` -> ``"x"``)."""
    stem, ext = os.path.splitext(name)
    return stem if ext.lower() in C.LISTED_AUDIO_EXTENSIONS else name


def subdirs(path: Path) -> list[Path]:
    """Visible sub-directories of ``path``, sorted by name (symlinks to directories included).

    Raises DatasetError if ``path`` cannot be listed; entries that cannot be examined are skipped.
    """
    return sorted((Path(e.path) for e in _entries(path) if not e.name.startswith(".") and _is(e, "dir")),
                  key=lambda p: p.name)


def audio_files(path: Path) -> list[Path]:
    """Visible audio files directly in ``path``, sorted by name (DatasetError if it cannot be listed)."""
    return sorted((Path(e.path) for e in _entries(path) if is_audio(e.name) and _is(e, "file")),
                  key=lambda p: p.name)


def walk_audio(top: Path, *, max_depth: int) -> Iterator[tuple[int, Path]]:
    """(depth, path) of every audio file under ``top``, depth 1 = directly in ``top``.

    Descends at most ``max_depth`` levels; hidden files and folders are skipped. Sorted order.
    A folder reached twice (a symlink loop) is walked once; a folder below ``top`` that cannot be
    read is skipped with a logged warning naming it (DatasetError only for ``top`` itself).
    """
    seen: set[tuple[int, int]] = set()
    stack: list[tuple[int, Path]] = [(1, top)]
    while stack:
        depth, here = stack.pop()
        try:
            st = here.stat()
            if (st.st_dev, st.st_ino) in seen:
                log.warning("%s: folder already walked (a symlink loop?); skipped", printable(here))
                continue
            seen.add((st.st_dev, st.st_ino))
            entries = _entries(here)
        except (OSError, DatasetError) as exc:
            if here == top:
                raise _unreadable(here, exc) from None
            log.warning("%s", _unreadable(here, exc))
            continue
        dirs = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if _is(entry, "dir"):
                if depth < max_depth:
                    dirs.append((depth + 1, Path(entry.path)))
            elif is_audio(entry.name) and _is(entry, "file"):
                yield depth, Path(entry.path)
        stack.extend(reversed(dirs))


def _entries(path: Path) -> list[os.DirEntry]:
    """The entries of folder ``path`` sorted by name; DatasetError naming it if it cannot be read."""
    try:
        with os.scandir(path) as it:
            return sorted(it, key=lambda e: e.name)
    except OSError as exc:
        raise _unreadable(path, exc) from None


def _unreadable(path: Path, exc: BaseException) -> DatasetError:
    if isinstance(exc, DatasetError):
        return exc
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
    return DatasetError(f"{printable(path)}: cannot read folder ({reason}); check that it exists and that "
                        "you may read it")


def _is(entry: os.DirEntry, kind: str) -> bool:
    """``entry.is_dir()`` / ``is_file()`` (following symlinks); False when it cannot be examined
    (a dangling link, a symlink loop, a name too long, no permission)."""
    try:
        return entry.is_dir() if kind == "dir" else entry.is_file()
    except OSError:
        return False


def describe_contents(path: Path) -> str:
    """What a directory holds, for error messages: "empty directory" or "2 folders, 3 other files"."""
    try:
        visible = [e for e in _entries(path) if not e.name.startswith(".")]
    except DatasetError:
        return "a folder that cannot be read"
    if not visible:
        return "empty directory"
    n_dirs = sum(1 for e in visible if _is(e, "dir"))
    n_files = len(visible) - n_dirs
    names = ", ".join(repr(printable(e.name)) for e in sorted(visible, key=lambda e: e.name)[:3])
    more = ", ..." if len(visible) > 3 else ""
    return f"{_plural(n_dirs, 'folder')}, {_plural(n_files, 'other file')} ({names}{more})"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def unique_song_ids(items: Iterable[tuple[str, Path]]) -> dict[str, Path]:
    """Map song id -> path. Two audio files with one song id (``a.mp3`` and ``a.wav``) do not stop
    a run: the later keeps its extension in its id (``a.wav``) and a warning names both."""
    out: dict[str, Path] = {}
    for song_id, path in items:
        if song_id in out:
            unique, n = f"{song_id}{Path(path).suffix.lower()}", 2
            while unique in out:
                unique, n = f"{song_id}{Path(path).suffix.lower()}~{n}", n + 1
            log.warning("two audio files for song %r: %s and %s; the second is song %r", song_id,
                        printable(out[song_id]), printable(path), unique)
            song_id = unique
        out[song_id] = path
    return out


def computed_split(units_by_singer: Mapping[str, Sequence[str]], *, seed: int,
                   ratio: Sequence[int], unit: str, hint: str) -> dict[tuple[str, str], Split]:
    """Split each singer's units (albums or song ids) with ``assign_split(seed, key=singer)``.

    Returns ``{(singer, unit): split}``. Raises DatasetError naming the first singer with fewer
    than 3 units (val or test would be empty); ``hint`` says what to do instead.
    """
    out: dict[tuple[str, str], Split] = {}
    for singer in sorted(units_by_singer):
        units = sorted(set(units_by_singer[singer]))
        if len(units) < MIN_SPLIT_UNITS:
            raise DatasetError(
                f"singer {singer!r} has {_plural(len(units), unit)}; the split "
                f"{'/'.join(map(str, ratio))} needs at least {MIN_SPLIT_UNITS} per singer{hint}"
            )
        for name, part in assign_split(units, seed=seed, key=singer, ratio=ratio).items():
            out[(singer, name)] = part
    return out


def warn_empty_parts(tracks: Sequence[Track], source: str) -> None:
    """Log a warning for each singer with no song in a split (used for file-given splits)."""
    have = {(t.singer, t.split) for t in tracks}
    for singer in sorted({t.singer for t in tracks}):
        missing = [p for p in SPLITS if (singer, p) not in have]
        if missing:
            log.warning("%s: singer %r has no %s songs", source, singer, "/".join(missing))


def sort_tracks(tracks: Iterable[Track]) -> tuple[Track, ...]:
    """Tracks in the one canonical order: by singer, then song id."""
    return tuple(sorted(tracks, key=lambda t: (t.singer, t.song_id)))


def song_rule(seed: int) -> str:
    """The split rule of the explicit song split (always warns that albums leak)."""
    ratio = ":".join(map(str, SONG_RATIO))
    return f"song split {ratio} per singer, stratified by singer (albums leak across splits), seed {seed}"


def unwrap(root: Path) -> Path:
    """The directory a tree layout starts in: ``root``, or its only sub-folder when ``root`` is
    just a wrapper (e.g. ``ROOT/singer32/<singer>/...``).

    ``root`` is a wrapper when it holds no audio and no split files and exactly one visible
    folder, and that folder holds no audio directly (so it is not itself a singer's folder).
    """
    children = subdirs(root)
    if len(children) != 1 or audio_files(root) or any(root.glob("*_train.json")):
        return root
    only = children[0]
    if audio_files(only):
        return root
    return only
