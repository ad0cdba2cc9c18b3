"""The public Python API: open a home once, then ask who sings, many times.

    import singerid

    with singerid.open("H") as sid:                     # model, index and store load once
        answer = sid.identify("song.mp3")               # or sid.identify(samples, sr=44100)
        print(answer.singer, answer.vote_share, answer.evidence[0].song)
        for result in sid.identify_many(["a.mp3", "b.flac"]):  # streams; bad files become Failure
            print(result.to_dict())

The CLI and the web service are thin layers over this module. An ``Identifier`` is safe to
share between threads: identifications read an immutable snapshot (index, labels) while
``enrol``/``remove`` write under a lock and then swap in a fresh snapshot, so a query never sees
a half-written home. Changes made by another process are picked up on the next query.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from singerid.audio import AudioInfo, Source, Waveform, probe_audio
from singerid.errors import ParameterError, SingeridError
from singerid.index.home import Home
from singerid.pipeline import manage
from singerid.pipeline.query import QueryEngine, QueryOptions
from singerid.pipeline.similar import SimilarSinger, TimbreMap, similar_to_singer, similar_to_vector, timbre_map
from singerid.results import ChangeResult, Failure, HomeInfo, Identification, SingerSummary

log = logging.getLogger(__name__)

AudioInput = str | Path | np.ndarray | Waveform

_OPTION_NAMES = {f.name for f in dataclasses.fields(QueryOptions)} | {"evidence", "similar", "place_on_map"}


def open(home: str | Path | Home | None = None, db: str | None = None, device: str = "cpu", *,  # noqa: A001
         threads: int | None = None) -> Identifier:
    """Open a home for identification: the model, the FAISS index and the store load once.

    home: the home directory (default: $SINGERID_HOME, else ./singerid-home); db: any SQLAlchemy
    URL of the metadata store (default: sqlite in the home); device: torch device of the embedder
    ("cpu", "cuda"); threads: torch CPU threads (default: torch's choice).
    Raises ArtefactError naming the steps that make the home usable, in the order that works.
    """
    from singerid.devices import check_device

    device = check_device(device)
    if threads is not None:
        import torch

        if threads < 1:
            raise ParameterError(f"threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)
    return Identifier(_home(home), db=db, device=device)


def probe(path: str | Path) -> AudioInfo:
    """What an audio file's header says (sample rate, channels, duration), without decoding it.

    Raises AudioError for a file that is not readable audio.
    """
    return probe_audio(path)


def info(home: str | Path | Home | None = None, db: str | None = None, *, check: bool = False) -> HomeInfo:
    """What a home holds (singers, songs, blocks, model, index) and the problems found (full check with ``check``)."""
    data = manage.info(_home(home), db_url=db, check=check)
    return HomeInfo(home=data["home"], n_singers=data["n_singers"], n_songs=data["n_songs"],
                    n_blocks=data["n_blocks"], problems=tuple(data["problems"]), details=data)


def enrol(home: str | Path | Home | None, singer: str, songs: Sequence[str | Path], *, db: str | None = None,
          album: str | None = None, progress: Any = False, **kwargs: Any) -> ChangeResult:
    """Add ``songs`` of ``singer`` without retraining: stored, indexed and queryable at once.

    Bad files are returned as ``failures`` (the others are still enrolled). Extra keyword
    arguments go to ``singerid.pipeline.manage.enrol`` (e.g. ``add_to_existing=True``).
    """
    summary = manage.enrol(_home(home), singer, list(songs), db_url=db, album=album, progress=progress, **kwargs)
    embed = summary.embed
    failures = tuple(Failure(p, e) for p, e in (*embed.failures, *embed.failed_before)) if embed is not None else ()
    return ChangeResult("enrol", singer, summary.n_songs, summary.n_blocks,
                        n_skipped=embed.n_skipped if embed is not None else 0, failures=failures,
                        index_vectors=summary.index_vectors, unknown_threshold=summary.unknown_threshold)


def remove(home: str | Path | Home | None, *, singer: str | None = None, songs: Sequence[str | Path] = (),
           db: str | None = None) -> ChangeResult:
    """Remove a singer (with all their songs) or the given songs from the store and the index."""
    summary = manage.remove(_home(home), singer=singer, songs=list(songs), db_url=db)
    return ChangeResult("remove", singer, summary.n_songs, summary.n_blocks, index_vectors=summary.index_vectors,
                        unknown_threshold=summary.unknown_threshold, songs=tuple(str(p) for p in songs))


class Identifier:
    """A home opened for identification (``singerid.open``). Thread-safe; close it (or use ``with``)."""

    def __init__(self, home: Home, *, db: str | None = None, device: str = "cpu") -> None:
        self.home = home
        self.db = db
        self.device = device
        self._write_lock = threading.Lock()
        self._swap_lock = threading.Lock()
        self._engine = QueryEngine.open(home, db_url=db, device=device)
        self._manifest_stamp = self._stamp()
        self._retired: list[QueryEngine] = []  # snapshots that queries may still be reading

    # -- identify ------------------------------------------------------------------------
    def identify(self, audio: AudioInput, sr: int | None = None, *, name: str | None = None,
                 **options: Any) -> Identification:
        """Who sings ``audio``: a file path, or samples float (n,) / (n, channels) at ``sr`` Hz.

        Options: k (11, the paper's), method ("knn" | "softmax"), top (runners-up, 5),
        evidence (reference songs shown, 5), min_similarity, min_share, reject_unknown (use the
        threshold calibrated by build-index), similar (closest singers by centroid, 0),
        place_on_map (the song's (x, y) on the timbre map). Raises AudioError for unusable
        audio, ParameterError for a bad option.
        """
        source = _source(audio, sr, name)
        similar, place, query_options = _options(options)
        engine = self._snapshot()
        decision = engine.identify(source, query_options)
        neighbours: tuple[SimilarSinger, ...] = ()
        point = None
        if (similar or place) and decision.song_vector is not None:
            centroids = engine.centroids()
            if similar:
                neighbours = tuple(similar_to_vector(centroids, decision.song_vector, top=similar))
            if place:
                point = _map_of(engine).place(decision.song_vector)
        return Identification.from_decision(decision, similar=neighbours, map_point=point)

    def identify_many(self, songs: Iterable[AudioInput], **options: Any) -> Iterator[Identification | Failure]:
        """Identify each song in turn, yielding as soon as each is decided.

        A song that cannot be identified yields a ``Failure`` (with the one-line reason) and the
        rest go on; a bad option raises ParameterError before the first song.
        """
        _options(options)  # validate once, up front
        for song in songs:
            try:
                yield self.identify(song, **options)
            except ParameterError:
                raise
            except SingeridError as exc:
                yield Failure(str(song), " ".join(str(exc).split()), type(exc).__name__)

    # -- the catalogue -----------------------------------------------------------------------
    def singers(self) -> list[SingerSummary]:
        """The singers the index can answer with, with their stored songs and blocks."""
        engine = self._snapshot()
        indexed = set(engine.singers)
        counts = engine.store.counts()
        return [SingerSummary(c.name, c.kind, c.n_songs, c.n_blocks) for c in counts.singers if c.name in indexed]

    def similar(self, singer: str | None = None, *, song: AudioInput | None = None, sr: int | None = None,
                top: int = 5) -> list[SimilarSinger]:
        """Singers closest by timbre to ``singer`` or to ``song`` (cosine of centroids; see pipeline.similar)."""
        if (singer is None) == (song is None):
            raise ParameterError("give either a singer or a song")
        engine = self._snapshot()
        if singer is not None:
            return similar_to_singer(engine.centroids(), singer, top=top)
        decision = engine.identify(_source(song, sr, None), QueryOptions(n_evidence=0, top=0))
        return similar_to_vector(engine.centroids(), decision.song_vector, top=top)

    def timbre_map(self) -> TimbreMap:
        """Every indexed singer on a plane (PCA of singer centroids)."""
        return _map_of(self._snapshot())

    def info(self, *, check: bool = False) -> HomeInfo:
        return info(self.home, self.db, check=check)

    # -- changes -------------------------------------------------------------------------
    def enrol(self, singer: str, songs: Sequence[str | Path], *, album: str | None = None, **kwargs: Any
              ) -> ChangeResult:
        """``singerid.api.enrol`` on this home; queries running meanwhile keep their snapshot."""
        with self._write_lock:
            result = enrol(self.home, singer, songs, db=self.db, album=album, **kwargs)
            self._reopen()
        return result

    def remove(self, *, singer: str | None = None, songs: Sequence[str | Path] = ()) -> ChangeResult:
        """``singerid.api.remove`` on this home; queries running meanwhile keep their snapshot."""
        with self._write_lock:
            result = remove(self.home, singer=singer, songs=songs, db=self.db)
            self._reopen()
        return result

    # -- lifetime ------------------------------------------------------------------------
    def close(self) -> None:
        with self._swap_lock:
            for engine in [self._engine, *self._retired]:
                engine.close()
            self._retired.clear()

    def __enter__(self) -> Identifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _snapshot(self) -> QueryEngine:
        """The engine to read from; reopened first when another process changed the home."""
        if self._stamp() != self._manifest_stamp and self._write_lock.acquire(blocking=False):
            try:
                self._reopen()
            finally:
                self._write_lock.release()
        return self._engine

    def _reopen(self) -> None:
        """Open a fresh snapshot (reusing the loaded embedder) and swap it in; the old one retires."""
        stamp = self._stamp()
        engine = QueryEngine.open(self.home, db_url=self.db, device=self.device, embedder=self._engine.embedder)
        with self._swap_lock:
            self._retired.append(self._engine)
            self._engine, self._manifest_stamp = engine, stamp
            while len(self._retired) > 2:  # long-finished snapshots: queries take well under a swap's lifetime
                self._retired.pop(0).close()

    def _stamp(self) -> tuple[int, int] | None:
        try:
            st = self.home.manifest_path.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size


def _map_of(engine: QueryEngine) -> TimbreMap:
    cached = getattr(engine, "_timbre_map", None)
    if cached is None:
        cached = timbre_map(engine.centroids())
        engine._timbre_map = cached  # type: ignore[attr-defined]
    return cached


def _home(home: str | Path | Home | None) -> Home:
    return home if isinstance(home, Home) else Home.resolve(home)


def _source(audio: AudioInput | None, sr: int | None, name: str | None) -> Source:
    if isinstance(audio, Waveform):
        return audio
    if isinstance(audio, np.ndarray):
        if sr is None:
            raise ParameterError("a waveform needs its sample rate: identify(samples, sr=44100)")
        return Waveform(audio, int(sr), name or "<waveform>")
    if isinstance(audio, (str, Path)):
        if sr is not None:
            raise ParameterError("sr is only for waveforms; a file's sample rate is read from the file")
        return Path(audio)
    raise ParameterError(f"audio must be a path or a numpy array, got {type(audio).__name__}")


def _options(options: dict[str, Any]) -> tuple[int, bool, QueryOptions]:
    unknown = sorted(set(options) - _OPTION_NAMES)
    if unknown:
        raise ParameterError(f"unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(_OPTION_NAMES))}")
    opts = dict(options)
    similar = int(opts.pop("similar", 0) or 0)
    place = bool(opts.pop("place_on_map", False))
    if "evidence" in opts:
        opts["n_evidence"] = opts.pop("evidence")
    if similar < 0:
        raise ParameterError(f"similar must be >= 0, got {similar}")
    try:
        return similar, place, QueryOptions(**opts)
    except TypeError as exc:
        raise ParameterError(f"bad query option: {exc}") from None
