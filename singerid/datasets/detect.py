"""Which layout a dataset directory has, and the one entry point that reads any of them.

Detection order (first match wins; no audio is decoded, only directories are listed):
1. artist20: ``mp3s-32k/`` in the directory (or the directory is ``mp3s-32k/``);
2. singer32 / singer60 with split files: ``wav_16000/`` or ``<name>_train.json``; singer32 vs
   singer60 from the folder / split-file names, else from the singer count (32 or 60);
3. a ``<singer>/[<album>/]<song>`` tree: singer32 / singer60 when the folder name says so, or
   when it is flat (no album folders) with exactly 32 or 60 singers; otherwise "folder".
A directory matching none of these is a DatasetError listing the layouts tried and what was found.
"""

from __future__ import annotations

from pathlib import Path

from singerid.datasets.artist20 import find_artist20, read_artist20
from singerid.datasets.base import Dataset, check_options, check_root, unwrap
from singerid.datasets.folder import no_singers_error, read_folder, scan_tree
from singerid.datasets.singers import (
    SINGER_COUNTS, count_singers, find_split_files, has_split_layout, name_from_path, read_singers,
)
from singerid.errors import DatasetError


def detect_layout(root: str | Path) -> str:
    """The kind of dataset at ``root``: "artist20", "singer32", "singer60" or "folder".

    Raises DatasetError for a missing path, a file, or a directory matching no known layout.
    """
    path = check_root(root)
    if find_artist20(path) is not None:
        return "artist20"
    base = unwrap(path)
    names = (path.name, base.name)
    if has_split_layout(base):
        files = find_split_files(base)
        named = name_from_path(*names, files.prefix if files else "")
        kind = named or SINGER_COUNTS.get(count_singers(path))
        if kind is None:
            raise DatasetError(
                f"{path}: singer32/60 split-file layout with {count_singers(path)} singers; cannot tell "
                "singer32 from singer60 by name or count, choose the dataset kind explicitly"
            )
        return kind
    singers = scan_tree(base)
    if not singers:
        raise no_singers_error(path, base)
    named = name_from_path(*names)
    if named:
        return named
    flat = all(song.album is None for songs in singers.values() for song in songs)
    return SINGER_COUNTS.get(len(singers), "folder") if flat else "folder"


def load_dataset(root: str | Path, *, kind: str = "auto", seed: int = 0, split: str = "album") -> Dataset:
    """Read the dataset at ``root`` as ``kind`` ("auto" detects it) with split mode ``split``.

    ``split``: "album" (paper protocol: artist20 album split 4/1/1 per singer; singer32/60 their
    split files, else 8:1:1 per singer; folder by album when every singer has >= 3 albums,
    else by song), "lists" (the dataset's own list / split files) or "song" (8:1:1 per singer,
    albums leak). Same root, kind, seed and split -> same tracks in the same order.

    Raises ParameterError for a bad kind, split or seed; DatasetError for a directory that
    is missing, unknown or not of ``kind``, or whose split cannot be made (see the readers).
    """
    check_options(kind=kind, seed=seed, split=split)
    path = check_root(root)
    chosen = detect_layout(path) if kind == "auto" else kind
    if chosen == "artist20":
        return read_artist20(path, seed=seed, split=split)
    if chosen in SINGER_COUNTS.values():
        return read_singers(path, name=chosen, seed=seed, split=split)
    return read_folder(path, seed=seed, split=split)
