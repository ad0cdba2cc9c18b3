"""Synthetic-singer corpus in artist20's layout: who sings is only in the voice's timbre.

``generate_corpus(out, CorpusSpec(...), workers=2, progress=False)`` writes::

    OUT/mp3s-32k/<singer>/<Album_Name>/<NN-Title>.mp3   (or .flac)
    OUT/lists/a20-{all,trn,val,tst}-tracks.list, a20-{trn,val,tst}-albums.list
    OUT/corpus.json                                      (how every singer and song was made)
    OUT/stems/mp3s-32k/<singer>/<Album_Name>/<NN-Title>.{vocals,accompaniment}.flac
                                                         (only with ``CorpusSpec(stems=True)``)

Each singer is a fixed source-filter voice (``synth_voice``); each album has its own
accompaniment and production drawn independently of the singer (``synth_music``); each song
mixes a new melody (``synth_score``) at its own voice-to-accompaniment ratio. Random streams
are derived from (seed, singer, album, song), so songs render in parallel and the same seed
gives byte-identical files whatever the number of workers. ``stem_paths(root, song.path)``
finds a song's stems (``synth_stems`` says what they hold); asking for stems leaves the songs'
bytes as they are.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from singerid import constants as C
from singerid.datasets import synth_names
from singerid.datasets.split import assign_split
from singerid.datasets.synth_music import AlbumStyle, Instrument, draw_album_style
from singerid.datasets.synth_song import SongJob, SongRecord, make_song
from singerid.datasets.synth_spec import CorpusSpec, plain
from singerid.datasets.synth_stems import STEMS_DIR, stem_paths
from singerid.datasets.synth_voice import REGISTERS, VoiceParams, draw_voice
from singerid.errors import ArtefactError, ParameterError
from singerid.progress import Progress, ProgressArg

__all__ = ["AlbumRecord", "CorpusManifest", "CorpusSpec", "SingerRecord", "SongRecord", "generate_corpus",
           "plan_corpus", "read_manifest", "stem_paths"]

log = logging.getLogger(__name__)

GENERATOR = "singerid synth-corpus"
GENERATOR_VERSION = "1"  # bump whenever the same spec would give different audio
MANIFEST_NAME = "corpus.json"
AUDIO_DIR = "mp3s-32k"  # artist20's folder name, kept for FLAC too
LISTS_DIR = "lists"
_SPLIT_TAGS = {"train": "trn", "val": "val", "test": "tst"}
_STREAM_VOICE, _STREAM_ALBUM, _STREAM_REGISTERS = 1, 2, 3  # independent random streams


@dataclass(frozen=True, slots=True)
class SingerRecord:
    name: str  # folder name, e.g. "singer_03_alto"
    voice: VoiceParams


@dataclass(frozen=True, slots=True)
class AlbumRecord:
    singer: str
    album: str  # folder name, e.g. "Silver_Harbour"
    split: str  # "train", "val" or "test" (assign_split with the corpus seed)
    style: AlbumStyle


@dataclass(frozen=True, slots=True)
class CorpusManifest:
    """Everything ``corpus.json`` records; ``root`` is where the corpus lies."""

    root: Path
    spec: CorpusSpec
    singers: tuple[SingerRecord, ...]
    albums: tuple[AlbumRecord, ...]
    songs: tuple[SongRecord, ...]
    fresh: bool = dataclasses.field(default=True, compare=False)  # written by this call, not found on disk

    @property
    def audio_seconds(self) -> float:
        return sum(s.seconds for s in self.songs)

    @property
    def n_bytes(self) -> int:
        return sum(s.n_bytes for s in self.songs)

    @property
    def mean_voice_ratio_db(self) -> float:
        """Mean voice/accompaniment ratio (dB, RMS while singing) over the songs."""
        return float(np.mean([s.voice_ratio_db for s in self.songs])) if self.songs else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "generator": GENERATOR, "generator_version": GENERATOR_VERSION, "status": "complete",
            "spec": self.spec.to_dict(),
            "summary": {"singers": len(self.singers), "albums": len(self.albums), "songs": len(self.songs),
                        "audio_seconds": round(self.audio_seconds, 3), "bytes": self.n_bytes,
                        "mean_voice_ratio_db": round(self.mean_voice_ratio_db, 3)},
            "singers": [plain(dataclasses.asdict(s)) for s in self.singers],
            "albums": [plain(dataclasses.asdict(a)) for a in self.albums],
            "songs": [plain(dataclasses.asdict(s)) for s in self.songs],
        }

    @classmethod
    def from_dict(cls, root: Path, data: dict[str, Any]) -> CorpusManifest:
        """Rebuild a manifest from ``corpus.json``. Raises ArtefactError if it does not fit."""
        try:
            spec = CorpusSpec.from_dict(data["spec"])
            singers = tuple(SingerRecord(s["name"], _voice(s["voice"])) for s in data["singers"])
            albums = tuple(AlbumRecord(a["singer"], a["album"], a["split"], _style(a["style"]))
                           for a in data["albums"])
            songs = tuple(SongRecord(**{**s, "progression": tuple(s["progression"]),
                                        "stems_sha256": tuple(s.get("stems_sha256", ()))}) for s in data["songs"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtefactError(f"{root / MANIFEST_NAME}: not a complete corpus manifest ({exc})") from exc
        return cls(root=root, spec=spec, singers=singers, albums=albums, songs=songs, fresh=False)


def read_manifest(root: str | Path) -> CorpusManifest:
    """Read ``ROOT/corpus.json`` of a finished corpus. Raises ArtefactError otherwise."""
    data = _read_raw(Path(root))
    if data is None or data.get("status") != "complete":
        raise ArtefactError(f"{Path(root) / MANIFEST_NAME}: missing or incomplete; regenerate the corpus")
    return CorpusManifest.from_dict(Path(root), data)


def plan_corpus(out: Path, spec: CorpusSpec) -> tuple[tuple[SingerRecord, ...], tuple[AlbumRecord, ...],
                                                      tuple[SongJob, ...]]:
    """Decide every singer, album and song (cheap, no audio). Deterministic for ``spec``."""
    reg_rng = np.random.default_rng([spec.seed, _STREAM_REGISTERS])
    names_rng = np.random.default_rng([spec.seed, _STREAM_REGISTERS, 1])
    kinds = list(REGISTERS)
    registers = [kinds[int(i) % len(kinds)] for i in reg_rng.permutation(spec.singers)]
    width = max(2, len(str(spec.singers)))
    singers, albums, jobs = [], [], []
    for si, register in enumerate(registers):
        name = f"singer_{si + 1:0{width}d}_{register}"
        voice = draw_voice(np.random.default_rng([spec.seed, _STREAM_VOICE, si]), register)
        singers.append(SingerRecord(name, voice))
        album_names = synth_names.album_names(names_rng, spec.albums)
        split = assign_split(album_names, seed=spec.seed, key=name, ratio=C.ARTIST20_ALBUM_SPLIT)
        for ai, album in enumerate(album_names):
            style = draw_album_style(np.random.default_rng([spec.seed, _STREAM_ALBUM, si, ai]))
            albums.append(AlbumRecord(name, album, split[album], style))
            for ti, title in enumerate(synth_names.song_titles(names_rng, spec.songs_per_album)):
                song_id = f"{name}/{album}/{ti + 1:02d}-{title}"
                jobs.append(SongJob(root=str(out), song_id=song_id, relpath=f"{AUDIO_DIR}/{song_id}.{spec.audio_format}",
                                    singer=name, album=album, split=split[album], voice=voice, style=style,
                                    seconds=float(spec.seconds), sample_rate=spec.sample_rate,
                                    audio_format=spec.audio_format, voice_ratio_db=spec.voice_ratio_db,
                                    seed_path=(spec.seed, si, ai, ti), stems=spec.stems))
    return tuple(singers), tuple(albums), tuple(jobs)


def generate_corpus(out: str | Path, spec: CorpusSpec, *, workers: int = 1, progress: ProgressArg = False) -> CorpusManifest:
    """Write the corpus of ``spec`` under ``out`` and return its manifest.

    ``out`` must be new, empty or a previous synthetic corpus. A previous corpus is kept as it
    is when it holds this spec and every file checks out against its SHA-256 (stems included);
    one that also has stems serves a spec without them. Otherwise (other spec, damaged or
    missing file, stems asked of a corpus without them) it is generated again. Raises
    ParameterError for a bad ``out`` or ``workers``.
    """
    out = Path(out)
    if not isinstance(workers, int) or workers < 1:
        raise ParameterError(f"workers must be a positive integer, got {workers!r}")
    singers, albums, jobs = plan_corpus(out, spec)
    previous = _prepare_out(out, spec)
    if previous is not None:
        log.info("%s already holds this corpus; nothing to do", out)
        return previous
    (out / AUDIO_DIR).mkdir(parents=True, exist_ok=True)
    _write_json(out / MANIFEST_NAME, {"generator": GENERATOR, "generator_version": GENERATOR_VERSION,
                                      "status": "incomplete", "spec": spec.to_dict()})
    songs = _run_jobs(jobs, workers=workers, progress=progress)
    manifest = CorpusManifest(root=out, spec=spec, singers=singers, albums=albums, songs=songs)
    _write_lists(out, manifest)
    _write_json(out / MANIFEST_NAME, manifest.to_dict())
    return manifest


def _run_jobs(jobs: tuple[SongJob, ...], *, workers: int, progress: ProgressArg) -> tuple[SongRecord, ...]:
    records: list[SongRecord] = []
    with Progress("synth-corpus", total=len(jobs), unit="song", progress=progress) as bar:
        if workers == 1:
            for job in jobs:
                records.append(make_song(job))
                bar.update()
        else:
            with ProcessPoolExecutor(max_workers=workers, initializer=_limit_threads) as pool:
                for record in pool.map(make_song, jobs, chunksize=1):
                    records.append(record)
                    bar.update()
        bar.close(f"{sum(r.seconds for r in records):,.0f} s of audio")
    return tuple(records)


def _limit_threads() -> None:
    """Worker start-up: one BLAS thread per process, the pool gives the parallelism."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def _prepare_out(out: Path, spec: CorpusSpec) -> CorpusManifest | None:
    """Check ``out``; clear a previous corpus, or return it when it already holds ``spec``."""
    if out.exists() and not out.is_dir():
        raise ParameterError(f"{out}: exists and is not a directory")
    if not out.exists() or not any(out.iterdir()):
        return None
    data = _read_raw(out)
    if data is None or data.get("generator") != GENERATOR:
        raise ParameterError(f"{out}: directory is not empty and is not a synthetic corpus "
                             f"(no {MANIFEST_NAME}); choose a new or empty directory")
    if data.get("status") == "complete" and data.get("generator_version") == GENERATOR_VERSION:
        try:
            manifest = CorpusManifest.from_dict(out, data)
        except ArtefactError as exc:
            log.warning("%s; generating the corpus again", exc)
        else:
            if _serves(manifest.spec, spec) and _files_check_out(manifest):
                return manifest
    log.info("replacing the previous synthetic corpus in %s", out)
    for name in (AUDIO_DIR, LISTS_DIR, STEMS_DIR):
        shutil.rmtree(out / name, ignore_errors=True)
    (out / MANIFEST_NAME).unlink()
    return None


def _serves(recorded: CorpusSpec, asked: CorpusSpec) -> bool:
    """Whether a corpus made with ``recorded`` is one made with ``asked`` (stems may be extra)."""
    return recorded == asked or (recorded.stems and dataclasses.replace(recorded, stems=False) == asked)


def _files_check_out(manifest: CorpusManifest) -> bool:
    """Every song file (and stem, if the corpus has them) is there with its recorded SHA-256."""
    root = manifest.root
    for song in manifest.songs:
        files = [(root / song.path, song.sha256)]
        if manifest.spec.stems:
            if len(song.stems_sha256) != 2:
                return False
            files += list(zip(stem_paths(root, song.path), song.stems_sha256))
        if not all(path.is_file() and _sha256(path) == sha for path, sha in files):
            return False
    return True


def _write_lists(out: Path, manifest: CorpusManifest) -> None:
    lists = out / LISTS_DIR
    lists.mkdir(parents=True, exist_ok=True)
    songs = sorted(manifest.songs, key=lambda s: s.song_id)
    _write_lines(lists / "a20-all-tracks.list", [s.song_id for s in songs])
    for split, tag in _SPLIT_TAGS.items():
        _write_lines(lists / f"a20-{tag}-tracks.list", [s.song_id for s in songs if s.split == split])
        _write_lines(lists / f"a20-{tag}-albums.list",
                     sorted(f"{a.singer}/{a.album}" for a in manifest.albums if a.split == split))


def _write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)


def _read_raw(root: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((root / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _voice(data: dict[str, Any]) -> VoiceParams:
    return VoiceParams(**{**data, "formant_offsets": tuple(data["formant_offsets"])})


def _style(data: dict[str, Any]) -> AlbumStyle:
    instruments = {k: Instrument(**{**data[k], "partials": tuple(data[k]["partials"])})
                   for k in ("chords", "bass", "arp")}
    return AlbumStyle(**{**data, **instruments, "progressions": tuple(tuple(p) for p in data["progressions"])})
