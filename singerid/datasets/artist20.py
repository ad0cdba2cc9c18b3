"""artist20 (LabROSA): ``ROOT/mp3s-32k/<artist>/<album>/<NN-track>.mp3`` and ``ROOT/lists/``.

The track inventory is ``lists/a20-all-tracks.list`` when present (a listed track missing on
disk is a DatasetError naming it; files on disk that are not listed are ignored and counted
in the log), else every audio file exactly three levels under ``mp3s-32k/``. Any audio
extension is accepted (the synthetic corpus may write flac). ``song_id`` is the list entry
``<artist>/<album>/<NN-track>`` (no extension). Other folders (``mfccs/``, ...) are ignored.

Splits: "album" = the paper's seeded per-artist album shuffle 4/1/1; "lists" = the dataset's
own ``a20-{trn,val,tst}-tracks.list`` (the official ones are 3/1/2); "song" = 8:1:1 per artist.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path

from singerid import constants as C
from singerid.datasets.base import (
    SONG_RATIO, Dataset, computed_split, song_rule, sort_tracks, strip_audio_ext, unique_song_ids, unwrap,
    walk_audio, warn_empty_parts,
)
from singerid.datasets.split import album_rule
from singerid.errors import DatasetError
from singerid.records import SPLITS, Split, Track

log = logging.getLogger(__name__)

AUDIO_DIR = "mp3s-32k"
LISTS_DIR = "lists"
ALL_LIST = "a20-all-tracks.list"
SPLIT_LISTS: dict[Split, str] = {"train": "a20-trn-tracks.list", "val": "a20-val-tracks.list",
                                 "test": "a20-tst-tracks.list"}
TRACK_DEPTH = 3  # <artist>/<album>/<track> below mp3s-32k/


def find_artist20(root: Path) -> tuple[Path, Path] | None:
    """(audio dir, lists dir) if ``root`` is an artist20 root or its ``mp3s-32k/``, else None.

    The lists dir may not exist; for ``ROOT/mp3s-32k`` given directly it is the sibling ``lists/``.
    A wrapper folder around ROOT (``X/artist20/mp3s-32k``, see ``unwrap``) is looked through.
    """
    if root.name == AUDIO_DIR:
        return root, root.parent / LISTS_DIR
    for base in (root, unwrap(root)):
        if (base / AUDIO_DIR).is_dir():
            return base / AUDIO_DIR, base / LISTS_DIR
    return None


def read_artist20(root: Path, *, seed: int, split: str) -> Dataset:
    """Read an artist20 tree. Raises DatasetError for a non-artist20 directory, a bad or
    missing list, a listed track missing on disk, or an artist with < 3 albums (album split)."""
    found = find_artist20(root)
    if found is None:
        raise DatasetError(f"{root}: not an artist20 directory (no {AUDIO_DIR}/ folder in it)")
    audio_dir, lists_dir = found
    entries, source = _inventory(audio_dir, lists_dir)
    if not entries:
        raise DatasetError(f"{audio_dir}: no audio files at {AUDIO_DIR}/<artist>/<album>/<track>.<ext>")
    layout = f"artist20: {AUDIO_DIR}/<artist>/<album>/<track> ({len(entries)} tracks, {source})"

    if split == "lists":
        parts = _read_split_lists(lists_dir, entries)
        rule = f"dataset lists {LISTS_DIR}/a20-{{trn,val,tst}}-tracks.list{_album_pattern(parts)} (seed not used)"
    elif split == "album":
        albums: dict[str, list[str]] = defaultdict(list)
        for entry in entries:
            artist, album, _ = entry.split("/")
            albums[artist].append(album)
        by_album = computed_split(albums, seed=seed, ratio=C.ARTIST20_ALBUM_SPLIT, unit="album",
                                  hint="; try the song split")
        parts = {e: by_album[(e.split("/")[0], e.split("/")[1])] for e in entries}
        rule = album_rule([len(set(a)) for a in albums.values()], seed=seed, ratio=C.ARTIST20_ALBUM_SPLIT,
                          why="paper")
    else:
        songs: dict[str, list[str]] = defaultdict(list)
        for entry in entries:
            songs[entry.split("/")[0]].append(entry)
        by_song = computed_split(songs, seed=seed, ratio=SONG_RATIO, unit="song", hint="")
        parts = {e: by_song[(e.split("/")[0], e)] for e in entries}
        rule = song_rule(seed)

    tracks = sort_tracks(
        Track(path=entries[e], singer=e.split("/")[0], song_id=e, split=part, album=e.split("/")[1],
              dataset="artist20")
        for e, part in parts.items()
    )
    if split == "lists":
        warn_empty_parts(tracks, f"{lists_dir}")
    return Dataset(name="artist20", root=root, layout=layout, split_rule=rule, seed=seed, tracks=tracks)


def _inventory(audio_dir: Path, lists_dir: Path) -> tuple[dict[str, Path], str]:
    """song id -> audio path, and a phrase saying where the inventory came from."""
    on_disk: dict[str, list[Path]] = defaultdict(list)
    for depth, path in walk_audio(audio_dir, max_depth=TRACK_DEPTH):
        if depth != TRACK_DEPTH:
            log.warning("%s: not at <artist>/<album>/<track>, ignored", path)
            continue
        on_disk[path.relative_to(audio_dir).with_suffix("").as_posix()].append(path)
    files = unique_song_ids((song_id, p) for song_id, paths in on_disk.items() for p in paths)

    all_list = lists_dir / ALL_LIST
    if not all_list.is_file():
        return files, f"tree scan, no {LISTS_DIR}/{ALL_LIST}"
    listed = read_track_list(all_list)
    missing = [e for e in listed if e not in files]
    if missing:
        raise DatasetError(
            f"{all_list}: {len(missing)} listed track(s) missing under {audio_dir}, first {missing[0]!r} "
            f"(looked for {'/'.join(C.AUDIO_EXTENSIONS)})"
        )
    unlisted = len(files) - len(listed)
    if unlisted:
        log.info("%s: %d audio file(s) not in %s, ignored", audio_dir, unlisted, ALL_LIST)
    return {e: files[e] for e in listed}, f"inventory from {LISTS_DIR}/{ALL_LIST}"


def read_track_list(path: Path) -> list[str]:
    """Entries ``<artist>/<album>/<track>`` of an artist20 track list, in file order, unique.

    Blank lines and ``#`` comments are skipped; a trailing audio extension is dropped.
    Raises DatasetError for a malformed line or a repeated entry.
    """
    entries: list[str] = []
    seen: set[str] = set()
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        entry = strip_audio_ext(line.removeprefix("./").removeprefix(f"{AUDIO_DIR}/"))
        if len(entry.split("/")) != TRACK_DEPTH or "" in entry.split("/"):
            raise DatasetError(f"{path}:{lineno}: expected <artist>/<album>/<track>, got {line!r}")
        if entry in seen:
            raise DatasetError(f"{path}:{lineno}: track {entry!r} listed twice")
        seen.add(entry)
        entries.append(entry)
    return entries


def _read_split_lists(lists_dir: Path, entries: dict[str, Path]) -> dict[str, Split]:
    """song id -> split from ``a20-{trn,val,tst}-tracks.list``; all three must exist."""
    missing = [name for name in SPLIT_LISTS.values() if not (lists_dir / name).is_file()]
    if not lists_dir.is_dir():
        raise DatasetError(f"{lists_dir}: no such folder; the lists split needs {', '.join(SPLIT_LISTS.values())}")
    if missing:
        raise DatasetError(
            f"{lists_dir}: the lists split needs {', '.join(SPLIT_LISTS.values())}; missing: {', '.join(missing)}"
        )
    parts: dict[str, Split] = {}
    for part, name in SPLIT_LISTS.items():
        for entry in read_track_list(lists_dir / name):
            if entry not in entries:
                raise DatasetError(f"{lists_dir / name}: track {entry!r} is not in the dataset (missing on disk)")
            if entry in parts:
                raise DatasetError(f"{lists_dir / name}: track {entry!r} is also in the {parts[entry]} list")
            parts[entry] = part
    unassigned = len(entries) - len(parts)
    if unassigned:
        log.warning("%s: %d track(s) in no split list, left out", lists_dir, unassigned)
    return parts


def _album_pattern(parts: dict[str, Split]) -> str:
    """`` (3/1/2 albums per singer)`` when every artist has the same album counts, else ``""``."""
    albums: dict[str, dict[Split, set[str]]] = defaultdict(lambda: {p: set() for p in SPLITS})
    for entry, part in parts.items():
        artist, album, _ = entry.split("/")
        albums[artist][part].add(album)
    patterns = {"/".join(str(len(a[p])) for p in SPLITS) for a in albums.values()}
    return f" ({patterns.pop()} albums per singer)" if len(patterns) == 1 else ""
