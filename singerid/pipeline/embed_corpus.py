"""`singerid embed-corpus`: decode, embed and store songs, one crash-safe transaction per song.

Per song: blocks are streamed from the file (bounded memory), embedded, appended to a shard
(fsynced), then the song row and its block rows are committed in ONE transaction. A rerun
skips songs already stored (by content SHA-256) and files that failed before and have not changed
since (same path, size and mtime; ``retry_failed`` tries them again); opening the shards for writing truncates any
rows an interrupted run appended but never committed, so after a kill at any moment a rerun
ends with no duplicated and no missing blocks. A bad file is recorded in the store's failures
(one row per path, updated on each attempt) and the run goes on; so is a byte-identical copy of
a stored song under another singer.

At the end, still holding the writer lock, the run brings the home's index up to date
(``singerid.pipeline.index_sync``): queries answer from the previous index until then, and
need no build-index afterwards. A rerun after a kill heals an index the killed run never updated.

Two parts, so that more than one engine can use them: ``embed_song`` (audio in, vectors out; no
store) and ``CorpusWriter`` (the single writer: shards + store, the tally and the progress).
``embed_tracks`` runs both in this process; ``singerid.distributed`` runs ``embed_song`` on Ray
actors and commits their results through the same writer.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from singerid.audio import BlockBatch, check_path, probe_audio, stream_blocks
from singerid.embedder.cache import FeatureCache
from singerid.embedder.embed import Embedder
from singerid.errors import AudioError, ParameterError, printable
from singerid.index.files import crash_point, sha256_file
from singerid.index.home import Home
from singerid.index.shards import ShardSet, writer_lock
from singerid.index.store import MetadataStore
from singerid.index.store_records import NewSong, SongRecord
from singerid.pipeline.common import load_embedder, open_store, record_model, resolve_model_kind
from singerid.pipeline.index_sync import SyncSummary, sync_index
from singerid.progress import Progress, ProgressArg
from singerid.records import Track

log = logging.getLogger(__name__)

FILE_ERRORS = (AudioError, OSError, UnicodeError)  # what one bad file raises: recorded, and the run goes on


@dataclass(frozen=True, slots=True)
class StoredSong:
    """One song written by ``embed_tracks``: its new block ids and embeddings (for enrol)."""

    path: str
    block_ids: np.ndarray  # int64 (n,)
    embeddings: np.ndarray  # float32 (n, d), unit rows


@dataclass(frozen=True, slots=True)
class SongVectors:
    """What the model makes of one song, before it is stored."""

    embeddings: np.ndarray  # float32 (n, d), C-contiguous, unit rows
    offsets_seconds: np.ndarray  # float64 (n,), start of each block in the song
    duration_seconds: float  # of the whole file


@dataclass(frozen=True, slots=True)
class EmbedSummary:
    """What one embed run did."""

    n_songs: int  # songs given
    n_added: int
    n_skipped: int  # already stored (same content hash)
    n_failed: int  # failed in this run
    n_blocks: int  # blocks added
    audio_seconds: float  # duration of the songs added
    seconds: float  # wall time
    failures: tuple[tuple[str, str], ...] = ()  # (path, error) of this run
    repaired_rows: int = 0  # uncommitted shard rows of an interrupted run that were dropped
    added: tuple[StoredSong, ...] = ()  # with their vectors; empty when the writer keeps none (the Ray engine)
    failed_before: tuple[tuple[str, str], ...] = ()  # (path, recorded error) not tried: failed in an earlier
    # run and unchanged since (see retry_failed)
    index_vectors: int | None = None  # vectors in the index after the run's sync (None: the home has no index)
    unknown_threshold: float | None = None  # recalibrated by that sync (None: unchanged, or too little data)

    @property
    def n_failed_before(self) -> int:
        return len(self.failed_before)

    @property
    def complete(self) -> bool:
        """Whether every song given is stored now (none failed, now or unchanged since an earlier run)."""
        return self.n_failed == 0 and self.n_failed_before == 0

    @property
    def x_real_time(self) -> float:
        return self.audio_seconds / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        before = (f", {self.n_failed_before:,} failed before and unchanged (not retried; --retry-failed)"
                  if self.n_failed_before else "")
        return (f"embedded {self.n_added:,} songs -> {self.n_blocks:,} blocks in {self.seconds:.1f} s "
                f"({self.x_real_time:,.0f}x real time); {self.n_skipped:,} already stored, {self.n_failed:,} failed"
                f"{before}")


def embed_tracks(home: Home, tracks: Sequence[Track], *, model_kind: str | None = None, db_url: str | None = None,
                 batch_size: int = 64, progress: ProgressArg = False, durable: bool = True,
                 embedder: Embedder | None = None, features: FeatureCache | None = None,
                 label: str = "embed-corpus", device: str = "cpu", retry_failed: bool = False) -> EmbedSummary:
    """Embed ``tracks`` into the home's store and shards (not the index: see build_index / enrol).

    A singer the model was trained on is stored as "trained", any other as "enrolled".
    ``features``: a feature cache holding what the model hears (``FeatureCache.for_input``);
    blocks are then read from it instead of decoding (and separating) the songs again, with
    the same blocks and offsets. ``progress`` (a ``singerid.progress`` mode or the old bool) shows
    a bar named ``label``, or one line at the end (and every ~30 s). ``device``: where the home's
    model runs when ``embedder`` is not given. ``retry_failed``: also try files that failed in an
    earlier run and have not changed since (by default they are counted in ``n_failed_before`` and
    left alone). One bad file never stops the run: unreadable, corrupt, absurd or duplicated audio
    is recorded and the run goes on. Raises ArtefactError when the home's model is missing or
    differs from the stored vectors'.
    """
    started = time.perf_counter()
    kind = resolve_model_kind(home, model_kind)
    embedder = embedder or load_embedder(home, kind, device=device)
    if features is not None:
        _check_cache(features, embedder)
    with open_corpus_writer(home, embedder, total=len(tracks), db_url=db_url, durable=durable, progress=progress,
                            label=label) as writer:
        for track in tracks:
            try:
                sha = writer.triage(track, retry_failed=retry_failed)
                if sha is not None:
                    writer.commit(track, sha, embed_song(track.path, embedder, features=features,
                                                         batch_size=batch_size))
            except FILE_ERRORS as exc:
                writer.fail(str(track.path), file_error(track.path, exc))
    return writer.summary(n_songs=len(tracks), started=started)


def embed_song(path: str | Path, embedder: Embedder, *, features: FeatureCache | None = None,
               batch_size: int = 64) -> SongVectors:
    """Cut one song into the model's blocks and embed them (nothing is stored).

    Blocks come from ``features`` when given, else from decoding (and separating) the file with
    the model's own front end, streamed in bounded memory. Raises AudioError for unusable audio
    (unreadable, corrupt, silent, or no block above the silence threshold).
    """
    path = Path(path)
    info = probe_audio(path)
    pieces, offsets = [], []
    for batch in _blocks(path, embedder, features):
        try:
            pieces.append(embedder.embed(batch.blocks, batch_size=batch_size))  # (n, d) per streamed chunk
        except ParameterError as exc:  # what the model refuses in this file's blocks is this file's fault
            raise AudioError(f"{printable(path)}: cannot be embedded ({exc})") from exc
        offsets.append(batch.offsets_seconds)
    if not pieces:
        raise AudioError(f"{path}: every block is below the silence threshold "
                         f"({embedder.feature_config.silence_db} dB)")
    return SongVectors(np.concatenate(pieces), np.concatenate(offsets), info.duration_seconds)


class CorpusWriter:
    """The single writer of an embed run: each song's shard rows and store rows in one crash-safe step.

    Get one from ``open_corpus_writer``. ``commit`` stores a song (or counts it as already stored),
    ``fail`` records a bad file, ``skip`` counts a stored one; every call moves the progress by one
    song, so every engine reports the same way.
    """

    def __init__(self, store: MetadataStore, shards: ShardSet, bar: Progress, *, known_singers: set[str],
                 repaired_rows: int, keep_vectors: bool) -> None:
        self.store, self.shards, self.bar = store, shards, bar
        self.known_singers = known_singers
        self.repaired_rows = repaired_rows
        self.keep_vectors = keep_vectors
        self.added: list[StoredSong] = []
        self.failures: list[tuple[str, str]] = []
        self.n_added = self.n_skipped = self.n_blocks = 0
        self.failed_before_runs: list[tuple[str, str]] = []
        self.audio_seconds = 0.0
        self.synced: SyncSummary | None = None  # set by open_corpus_writer once the index is up to date

    def is_stored(self, content_sha256: str) -> bool:
        """Whether a song with this content is in the store already."""
        return self.store.find_song(content_sha256) is not None

    def stored_song(self, content_sha256: str) -> SongRecord | None:
        """The stored song with this content (whoever its singer), or None."""
        return self.store.find_song(content_sha256)

    def failed_before(self, path: str | Path) -> bool:
        """Whether ``path`` failed in an earlier run and is unchanged since; if so it is counted
        (``n_failed_before``, one progress step) and should not be tried again."""
        stamp = _file_stamp(path)
        record = None if stamp is None else self.store.failed_before(_key(path), size_bytes=stamp[0],
                                                                     mtime_ns=stamp[1])
        if record is None:
            return False
        self.failed_before_runs.append((printable(path), record.error))
        self._tick()
        return True

    def triage(self, track: Track, *, retry_failed: bool = False) -> str | None:
        """Check one track before any decoding: its content SHA-256 when it must be embedded, else None
        (stored already, or failed before and unchanged: counted here). Both engines call it first.

        Raises what ``FILE_ERRORS`` names for a file to record: missing, unreadable, or the same
        audio as a song stored under another singer.
        """
        if not retry_failed and self.failed_before(track.path):
            return None
        path = check_path(track.path)
        sha = sha256_file(path)
        stored = self.stored_song(sha)
        if stored is None:
            return sha
        if stored.singer != track.singer:
            raise AudioError(f"{printable(path)}: same audio as {printable(stored.path)}, stored under "
                             f"singer {stored.singer!r}, not {track.singer!r}; not stored twice "
                             "(remove one copy, or fix the singer it belongs to)")
        self.skip()
        return None

    def skip(self) -> None:
        """Count one song that is stored already."""
        self.n_skipped += 1
        self._tick()

    def fail(self, path: str, error: str, *, stage: str = "embed") -> None:
        """Record one unusable file (in the store's failures, one row per path, and this run's
        tally) with its size and mtime, so that a rerun skips it while it stays unchanged."""
        error = printable(" ".join(str(error).split()))
        log.warning("%s", error)
        stamp = _file_stamp(path) or (None, None)
        self.store.record_failure(_key(path), error, stage=stage, size_bytes=stamp[0], mtime_ns=stamp[1])
        self.failures.append((printable(path), error))
        self._tick()

    def commit(self, track: Track, content_sha256: str, vectors: SongVectors) -> StoredSong | None:
        """Append the song's vectors to a shard, then its song and block rows in one transaction.

        Returns None (and counts a skip) if a song with this content was stored meanwhile.
        """
        if self.is_stored(content_sha256):
            self.skip()
            return None
        span = self.shards.append(vectors.embeddings)  # rows and their checksums, fsynced
        song = NewSong(path=str(Path(track.path).absolute()), content_sha256=content_sha256, singer=track.singer,
                       song_key=track.song_id, split=track.split, duration_seconds=vectors.duration_seconds,
                       dataset=track.dataset, album=track.album,
                       singer_kind="trained" if track.singer in self.known_singers else "enrolled")
        ids = self.store.add_song(song, offsets_seconds=vectors.offsets_seconds, shard=span.shard,
                                  first_row=span.first_row)
        crash_point("song committed")
        self.store.clear_failure(song.path)  # a file that failed before and has been fixed
        stored = StoredSong(song.path, ids, vectors.embeddings)
        if self.keep_vectors:
            self.added.append(stored)
        self.n_added += 1
        self.n_blocks += len(ids)
        self.audio_seconds += vectors.duration_seconds
        self._tick()
        return stored

    def summary(self, *, n_songs: int, started: float) -> EmbedSummary:
        """The run's ``EmbedSummary``; ``started`` is its ``time.perf_counter()`` at the start."""
        return EmbedSummary(n_songs=n_songs, n_added=self.n_added, n_skipped=self.n_skipped,
                            n_failed=len(self.failures), n_blocks=self.n_blocks, audio_seconds=self.audio_seconds,
                            seconds=time.perf_counter() - started, failures=tuple(self.failures),
                            repaired_rows=self.repaired_rows, added=tuple(self.added),
                            failed_before=tuple(self.failed_before_runs),
                            index_vectors=self.synced.n_vectors if self.synced else None,
                            unknown_threshold=self.synced.unknown_threshold if self.synced else None)

    def close_line(self) -> str:
        return (f"{self.n_blocks:,} blocks" + (f", {self.n_skipped:,} already stored" if self.n_skipped else "")
                + (f", {len(self.failures):,} failed" if self.failures else "")
                + (f", {len(self.failed_before_runs):,} failed before (not retried)" if self.failed_before_runs
                   else ""))

    def _tick(self) -> None:
        self.bar.update(1, blocks=self.n_blocks, failed=len(self.failures))


@contextmanager
def open_corpus_writer(home: Home, embedder: Embedder, *, total: int, db_url: str | None = None,
                       durable: bool = True, progress: ProgressArg = False, label: str = "embed-corpus",
                       keep_vectors: bool = True) -> Iterator[CorpusWriter]:
    """Open the home's store and shards for writing ``embedder``'s vectors of ``total`` songs.

    Takes the writer lock, deletes temporary files of killed writers, records the model in the
    manifest, binds the store to it, repairs rows an interrupted run left in the shards, shows
    progress named ``label``, and at the end brings the index up to date (``sync_index``). ``keep_vectors=False`` keeps no vectors in
    memory (``EmbedSummary.added`` stays empty: for corpora of any size). Raises ArtefactError
    when the home's vectors come from another model.
    """
    home.create()
    with open_store(home, db_url) as store, writer_lock(home.shards_dir):
        home.clean_leftovers()
        record_model(home, home.read_manifest(missing_ok=True), embedder)
        store.bind_embeddings(embedder.weights_sha256, embedder.feature_config)
        with ShardSet(home.shards_dir, embedder.embedding_dim) as shards:
            shards.take_over(committed_rows=store.shard_row_counts(), durable=durable)
            with Progress(label, total=total, unit="song", progress=progress) as bar:
                writer = CorpusWriter(store, shards, bar, known_singers=set(embedder.singers),
                                      repaired_rows=sum(shards.repaired.values()), keep_vectors=keep_vectors)
                yield writer
                bar.close(writer.close_line())
            writer.synced = sync_index(home, store)


def _key(path: str | Path) -> str:
    """How the store names a file: its absolute path (as songs.path)."""
    return str(Path(path).absolute())


def _file_stamp(path: str | Path) -> tuple[int, int] | None:
    """(size in bytes, mtime in ns) of ``path``, or None if it cannot be read."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_size, st.st_mtime_ns


def file_error(path: str | Path, exc: BaseException) -> str:
    """The one-line error of one file (``FILE_ERRORS``); environment errors (OSError, bad names) get its name."""
    if isinstance(exc, AudioError):
        return str(exc)
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else f"{type(exc).__name__}: {exc}"
    return f"{printable(path)}: cannot read ({reason})"


def _blocks(path: Path, embedder: Embedder, features: FeatureCache | None) -> Iterator[BlockBatch]:
    """The model-input blocks of one song: from the cache when given, else decoded by the model's front end."""
    if features is None:
        return embedder.iter_blocks(path)  # the model's own front end (mix or separated vocals)
    return stream_blocks([np.asarray(features.logmel(path)).T], embedder.feature_config)


def _check_cache(features: FeatureCache, embedder: Embedder) -> None:
    """ParameterError unless ``features`` holds what the model hears (same features, stem and separation)."""
    wanted = FeatureCache.for_input(features.root, embedder.feature_config, embedder.front_end_config)
    if features.cfg != embedder.feature_config or features.dir != wanted.dir:
        raise ParameterError(f"feature cache {features.dir} does not hold what the model hears "
                             f"({embedder.front_end_config.describe()}, features {embedder.feature_config.fingerprint()})")
