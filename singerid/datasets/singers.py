"""singer32 / singer60 (the paper's Chinese-pop datasets, 70 songs per singer, no albums).

Two layouts, both possibly inside one wrapper folder (``ROOT/singer32/...``):
- tree: ``<singer>/<song>.{mp3,wav,flac,m4a}`` (a song may sit one folder deeper);
- split files: ``wav_16000/<file_id>.wav`` with ``<name>_train.json``, ``<name>_validate.json``,
  ``<name>_test.json``, each mapping singer -> list of file ids (with or without ``.wav``).
  Split files beside a tree are used too (ids are then song file names in the singer folder).
With split files, the inventory is what they list (a listed file missing on disk is a
DatasetError naming it; a singer listed with no songs at all is a DatasetError). ``song_id``
is ``<singer>/<file id or path below the singer folder>``, no extension.

Split "album" (the paper's protocol): the split files when present, else 8:1:1 per singer
(seeded); "lists": the split files, DatasetError without them; "song": 8:1:1 per singer.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from singerid import constants as C
from singerid.datasets.base import (
    SONG_RATIO, Dataset, audio_files, computed_split, song_rule, sort_tracks, strip_audio_ext, unique_song_ids,
    unwrap, warn_empty_parts,
)
from singerid.datasets.folder import no_singers_error, scan_tree
from singerid.errors import DatasetError
from singerid.records import SPLITS, Split, Track

log = logging.getLogger(__name__)

WAV_DIR = "wav_16000"
SPLIT_SUFFIXES: dict[Split, str] = {"train": "_train.json", "val": "_validate.json", "test": "_test.json"}
SINGER_COUNTS = {32: "singer32", 60: "singer60"}  # paper §3.1


@dataclass(frozen=True, slots=True)
class SplitFiles:
    """One complete set of ``<prefix>_{train,validate,test}.json`` files."""

    prefix: str
    paths: dict[Split, Path]

    @property
    def pattern(self) -> str:
        return f"{self.prefix}_{{train,validate,test}}.json"


def find_split_files(base: Path) -> SplitFiles | None:
    """The split-file set in ``base``, None if there is none.

    Raises DatasetError for an incomplete set (``x_train.json`` without ``x_test.json``) or
    for two different sets in one folder.
    """
    prefixes = sorted({p.name[: -len(suffix)] for suffix in SPLIT_SUFFIXES.values()
                       for p in base.glob(f"*{suffix}") if p.is_file()})
    if not prefixes:
        return None
    if len(prefixes) > 1:
        raise DatasetError(f"{base}: several split-file sets ({', '.join(map(repr, prefixes))}); keep one")
    prefix = prefixes[0]
    paths = {part: base / f"{prefix}{suffix}" for part, suffix in SPLIT_SUFFIXES.items()}
    missing = [p.name for p in paths.values() if not p.is_file()]
    if missing:
        raise DatasetError(f"{base}: incomplete split files for {prefix!r}: missing {', '.join(missing)}")
    return SplitFiles(prefix=prefix, paths=paths)


def has_split_layout(base: Path) -> bool:
    """True when ``base`` holds ``wav_16000/`` or a ``*_train.json`` split file."""
    return (base / WAV_DIR).is_dir() or any(p.is_file() for p in base.glob(f"*{SPLIT_SUFFIXES['train']}"))


def name_from_path(*names: str) -> str | None:
    """"singer32" / "singer60" when one of ``names`` (folder names, split-file prefix) says so."""
    for name in names:
        low = name.lower()
        for kind in SINGER_COUNTS.values():
            if kind in low:
                return kind
    return None


def read_split_file(path: Path) -> dict[str, list[str]]:
    """singer -> file ids (extension stripped) of one JSON split file. Raises DatasetError."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:  # or nested too deeply
        raise DatasetError(f"{path}: not a readable JSON split file ({exc})") from exc
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, list) and all(isinstance(i, str) for i in v) for k, v in data.items()
    ):
        raise DatasetError(f"{path}: expected a JSON object mapping singer -> list of file ids")
    return {singer: [strip_audio_ext(Path(i).name) for i in ids] for singer, ids in data.items()}


def read_singers(root: Path, *, name: str, seed: int, split: str) -> Dataset:
    """Read a singer32 / singer60 directory as dataset ``name``. Raises DatasetError for no
    songs, bad or incomplete split files, listed files missing on disk, the lists split
    without split files, or a singer with fewer than 3 songs (computed split)."""
    base = unwrap(root)
    files = find_split_files(base)
    wav_dir = base / WAV_DIR
    labelled = _from_split_files(base, files, wav_dir if wav_dir.is_dir() else None) if files else None
    if labelled is None:
        if wav_dir.is_dir():
            raise DatasetError(f"{base}: {WAV_DIR}/ needs split files <name>_train.json, <name>_validate.json, "
                               "<name>_test.json (they hold the singer labels)")
        labelled = {song.song_id: (song.path, singer, None)
                    for singer, songs in scan_tree(base).items() for song in songs}
        if not labelled:
            raise no_singers_error(root, base)
    where = f", under {base.name}/" if base != root else ""
    shape = f"{WAV_DIR}/<file_id>.wav" if wav_dir.is_dir() else "<singer>/<song>"
    given = f" + {files.pattern}" if files else ""
    n_singers = len({singer for _, singer, _ in labelled.values()})
    layout = f"{name}: {shape}{given} ({n_singers} singers, {len(labelled)} songs{where})"

    if split == "lists" and files is None:
        raise DatasetError(f"{base}: no split files <name>_train.json, <name>_validate.json, <name>_test.json; "
                           "the lists split needs them")
    if split in ("album", "lists") and files is not None:
        parts = {song_id: given_part for song_id, (_, _, given_part) in labelled.items()}
        rule = f"dataset split files {files.pattern}{_song_pattern(labelled)} (seed not used)"
    else:
        ids: dict[str, list[str]] = defaultdict(list)
        for song_id, (_, singer, _) in labelled.items():
            ids[singer].append(song_id)
        ratio = SONG_RATIO if split == "song" else C.SINGER_SONG_SPLIT  # same 8:1:1, different sources
        by_song = computed_split(ids, seed=seed, ratio=ratio, unit="song", hint="")
        parts = {song_id: part for (_, song_id), part in by_song.items()}
        paper = f"song split {':'.join(map(str, ratio))} per singer (paper; no albums), seed {seed}"
        rule = song_rule(seed) if split == "song" else paper

    tracks = sort_tracks(Track(path=path, singer=singer, song_id=song_id, split=parts[song_id], dataset=name)
                         for song_id, (path, singer, _) in labelled.items())
    if files is not None and split != "song":
        warn_empty_parts(tracks, files.pattern)
    return Dataset(name=name, root=root, layout=layout, split_rule=rule, seed=seed, tracks=tracks)


def count_singers(root: Path) -> int:
    """Singers of a singer32/60 directory (from the split files, else the singer folders)."""
    base = unwrap(root)
    files = find_split_files(base)
    if files:
        return len({singer for path in files.paths.values() for singer in read_split_file(path)})
    return len(scan_tree(base))


def _from_split_files(base: Path, files: SplitFiles, wav_dir: Path | None
                      ) -> dict[str, tuple[Path, str, Split]]:
    """song id -> (path, singer, split) for every file the split files list."""
    if wav_dir is not None:
        on_disk = unique_song_ids((strip_audio_ext(p.name), p) for p in audio_files(wav_dir))
    else:
        on_disk = {song.song_id: song.path for songs in scan_tree(base).values() for song in songs}
    out: dict[str, tuple[Path, str, Split]] = {}
    singers: set[str] = set()
    for part in SPLITS:
        path = files.paths[part]
        for singer, ids in read_split_file(path).items():
            singers.add(singer)
            for file_id in ids:
                song_id = f"{singer}/{file_id}"
                audio = on_disk.get(file_id if wav_dir is not None else song_id)
                if audio is None:
                    where = wav_dir if wav_dir is not None else base / singer
                    raise DatasetError(f"{path}: file {file_id!r} of singer {singer!r} is missing in {where}")
                if song_id in out:
                    raise DatasetError(f"{path}: file {file_id!r} of singer {singer!r} is also in the "
                                       f"{out[song_id][2]} split")
                out[song_id] = (audio, singer, part)
    empty = sorted(singers - {singer for _, singer, _ in out.values()})
    if empty:
        raise DatasetError(f"{files.pattern}: singer {empty[0]!r} has no songs in any split file")
    _check_unique_files(out, files)
    unlisted = len(on_disk) - len(out)
    if unlisted > 0:
        log.info("%s: %d audio file(s) not in the split files, ignored", wav_dir or base, unlisted)
    return out


def _check_unique_files(labelled: dict[str, tuple[Path, str, Split]], files: SplitFiles) -> None:
    """One audio file must not be labelled with two singers."""
    owner: dict[Path, str] = {}
    for path, singer, _ in labelled.values():
        if path in owner and owner[path] != singer:
            raise DatasetError(f"{files.pattern}: {path.name!r} is listed for singers {owner[path]!r} and {singer!r}")
        owner[path] = singer


def _song_pattern(labelled: dict[str, tuple[Path, str, Split | None]]) -> str:
    """`` (56/7/7 songs per singer)`` when all singers have the same counts, else ``""``."""
    per: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(SPLITS, 0))
    for _, singer, part in labelled.values():
        if part is not None:
            per[singer][part] += 1
    patterns = {"/".join(str(c[p]) for p in SPLITS) for c in per.values()}
    return f" ({patterns.pop()} songs per singer)" if len(patterns) == 1 else ""
