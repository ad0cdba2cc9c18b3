"""Any folder of songs sorted by singer: ``DIR/<singer>/[<album>/]<song>.<ext>``.

Songs directly in a singer's folder have no album; songs one level deeper take that folder
as their album. Deeper files are ignored (logged). A singer folder without audio is skipped
with a logged warning. ``song_id`` is the path below DIR without extension.

Split "album": album split 4/1/1 per singer when every song has an album and every singer has
at least 3 albums, otherwise the 8:1:1 song split per singer (the split rule says which and
why). "song": the 8:1:1 song split. "lists": a folder has no split files, so DatasetError.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

from singerid import constants as C
from singerid.datasets.base import (
    EXPECTED_LAYOUTS, MIN_SPLIT_UNITS, SONG_RATIO, Dataset, audio_files, computed_split, describe_contents,
    song_rule, sort_tracks, subdirs, unique_song_ids, unwrap, walk_audio,
)
from singerid.datasets.split import album_rule
from singerid.errors import DatasetError
from singerid.records import Track

log = logging.getLogger(__name__)

SONG_DEPTH_MAX = 2  # <singer>/<song> or <singer>/<album>/<song>


@dataclass(frozen=True, slots=True)
class Song:
    """One audio file of a singer tree."""

    path: Path
    song_id: str  # "<singer>/[<album>/]<song>", no extension
    album: str | None  # the folder between singer and song, if any


def scan_tree(base: Path) -> dict[str, list[Song]]:
    """Singer folder name -> its songs (sorted by song id) for a ``<singer>/[<album>/]<song>`` tree.

    Singer folders without audio at depth 1-2 are left out with a logged warning; deeper
    files are ignored and counted in the log. Two files of one song id (``a.mp3``, ``a.wav``) are
    both kept, the second under an id with its extension (a logged warning names both).
    """
    singers: dict[str, list[Song]] = {}
    for folder in subdirs(base):
        songs, deeper = [], 0
        for depth, path in walk_audio(folder, max_depth=SONG_DEPTH_MAX + 1):
            if depth > SONG_DEPTH_MAX:
                deeper += 1
                continue
            rel = path.relative_to(base).with_suffix("").as_posix()
            songs.append(Song(path=path, song_id=rel, album=path.parent.name if depth == 2 else None))
        if deeper:
            log.warning("%s: %d audio file(s) deeper than <singer>/<album>/<song>, ignored", folder, deeper)
        if not songs:
            log.warning("%s: no audio files, not a singer folder; skipped", folder)
            continue
        ids = unique_song_ids((s.song_id, s.path) for s in songs)  # a second file of one song gets its own id
        by_path = {path: song_id for song_id, path in ids.items()}
        songs = [replace(s, song_id=by_path[s.path]) for s in songs]
        singers[folder.name] = sorted(songs, key=lambda s: s.song_id)
    return singers


def no_singers_error(root: Path, base: Path) -> DatasetError:
    """The error for a directory whose tree holds no singer folders with audio."""
    loose = audio_files(base)
    if loose:
        found = f"{len(loose)} audio file(s) directly in it but no <singer>/ folders"
    else:
        found = f"no audio files under it ({describe_contents(base)})"
    where = root if base == root else f"{root} (looked in {base.name}/)"
    return DatasetError(f"{where}: {found}; expected one of: {EXPECTED_LAYOUTS}")


def read_folder(root: Path, *, seed: int, split: str) -> Dataset:
    """Read ``DIR/<singer>/[<album>/]<song>.<ext>``. Raises DatasetError for no singers,
    for the lists split, or for a singer with fewer than 3 songs when splitting by song."""
    if split == "lists":
        raise DatasetError(f"{root}: a folder dataset has no split files; use the album or song split")
    base = unwrap(root)
    singers = scan_tree(base)
    if not singers:
        raise no_singers_error(root, base)
    n_songs = sum(len(s) for s in singers.values())
    layout = f"folder: <singer>/[<album>/]<song> ({len(singers)} singers, {n_songs} songs"
    layout += f", under {base.name}/)" if base != root else ")"

    short = _album_shortfall(singers)
    if split == "album" and short is None:
        albums = {name: [s.album or "" for s in songs] for name, songs in singers.items()}
        by_album = computed_split(albums, seed=seed, ratio=C.ARTIST20_ALBUM_SPLIT, unit="album", hint="")
        part_of = {s.song_id: by_album[(name, s.album or "")] for name, songs in singers.items() for s in songs}
        rule = album_rule([len(set(a)) for a in albums.values()], seed=seed, ratio=C.ARTIST20_ALBUM_SPLIT,
                          why=f"every singer has >= {MIN_SPLIT_UNITS} albums")
    else:
        ids = {name: [s.song_id for s in songs] for name, songs in singers.items()}
        by_song = computed_split(ids, seed=seed, ratio=SONG_RATIO, unit="song", hint="")
        part_of = {song_id: part for (_, song_id), part in by_song.items()}
        ratio = ":".join(map(str, SONG_RATIO))
        rule = song_rule(seed) if split == "song" else f"song split {ratio} per singer ({short}), seed {seed}"

    tracks = sort_tracks(
        Track(path=s.path, singer=name, song_id=s.song_id, split=part_of[s.song_id], album=s.album,
              dataset="folder")
        for name, songs in singers.items() for s in songs
    )
    return Dataset(name="folder", root=root, layout=layout, split_rule=rule, seed=seed, tracks=tracks)


def _album_shortfall(singers: dict[str, list[Song]]) -> str | None:
    """None when an album split is possible, else why not (for the split rule)."""
    if all(s.album is None for songs in singers.values() for s in songs):
        return "no album folders"
    for name, songs in singers.items():
        loose = sum(1 for s in songs if s.album is None)
        if loose:
            return f"singer {name!r} has {loose} song(s) outside album folders; albums leak across splits"
        n_albums = len({s.album for s in songs})
        if n_albums < MIN_SPLIT_UNITS:
            return (f"singer {name!r} has {n_albums} album(s), fewer than {MIN_SPLIT_UNITS}; "
                    "albums leak across splits")
    return None

