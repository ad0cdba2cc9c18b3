"""`singerid embed-corpus`: decode, embed and store songs, one crash-safe transaction per song.

Per song: blocks are streamed from the file (bounded memory), embedded, appended to a shard
(fsynced), then the song row and its block rows are committed in ONE transaction. A rerun
skips songs already stored (by content SHA-256); opening the shards for writing truncates any
rows an interrupted run appended but never committed, so after a kill at any moment a rerun
ends with no duplicated and no missing blocks. A bad file is recorded in ``failures`` and the
run goes on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from singerid.audio import BlockBatch, check_path, probe_audio, stream_blocks
from singerid.embedder.cache import FeatureCache
from singerid.embedder.embed import Embedder
from singerid.errors import AudioError, ParameterError
from singerid.index.files import sha256_file
from singerid.index.home import Home
from singerid.index.shards import ShardSet
from singerid.index.store import MetadataStore
from singerid.index.store_records import NewSong
from singerid.pipeline.common import load_embedder, open_store, record_model, resolve_model_kind
from singerid.progress import Progress, ProgressArg
from singerid.records import Track

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StoredSong:
    """One song written by ``embed_tracks``: its new block ids and embeddings (for enrol)."""

    path: str
    block_ids: np.ndarray  # int64 (n,)
    embeddings: np.ndarray  # float32 (n, d), unit rows


@dataclass(frozen=True, slots=True)
class EmbedSummary:
    """What one embed run did."""

    n_songs: int  # songs given
    n_added: int
    n_skipped: int  # already stored (same content hash)
    n_failed: int
    n_blocks: int  # blocks added
    audio_seconds: float  # duration of the songs added
    seconds: float  # wall time
    failures: tuple[tuple[str, str], ...] = ()  # (path, error) of this run
    repaired_rows: int = 0  # uncommitted shard rows of an interrupted run that were dropped
    added: tuple[StoredSong, ...] = ()

    @property
    def x_real_time(self) -> float:
        return self.audio_seconds / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        return (f"embedded {self.n_added:,} songs -> {self.n_blocks:,} blocks in {self.seconds:.1f} s "
                f"({self.x_real_time:,.0f}x real time); {self.n_skipped:,} already stored, {self.n_failed:,} failed")


def embed_tracks(home: Home, tracks: Sequence[Track], *, model_kind: str | None = None, db_url: str | None = None,
                 batch_size: int = 64, progress: ProgressArg = False, durable: bool = True,
                 embedder: Embedder | None = None, features: FeatureCache | None = None,
                 label: str = "embed-corpus", device: str = "cpu") -> EmbedSummary:
    """Embed ``tracks`` into the home's store and shards (not the index: see build_index / enrol).

    A singer the model was trained on is stored as "trained", any other as "enrolled".
    ``features``: a feature cache holding what the model hears (``FeatureCache.for_input``);
    blocks are then read from it instead of decoding (and separating) the songs again, with
    the same blocks and offsets. ``progress`` (a ``singerid.progress`` mode or the old bool) shows
    a bar named ``label``, or one line at the end (and every ~30 s). ``device``: where the home's
    model runs when ``embedder`` is not given. Raises ArtefactError when the home's model is missing or
    differs from the stored vectors'.
    """
    started = time.perf_counter()
    kind = resolve_model_kind(home, model_kind)
    embedder = embedder or load_embedder(home, kind, device=device)
    if features is not None:
        _check_cache(features, embedder)
    home.create()
    record_model(home, home.read_manifest(missing_ok=True), embedder)
    cfg = embedder.feature_config
    known = set(embedder.singers)
    added: list[StoredSong] = []
    failures: list[tuple[str, str]] = []
    n_skipped = n_blocks = 0
    audio_seconds = 0.0
    with open_store(home, db_url) as store:
        store.bind_embeddings(embedder.weights_sha256, cfg)
        with ShardSet.open_writer(home.shards_dir, embedder.embedding_dim, committed_rows=store.shard_row_counts(),
                                  durable=durable) as shards:
            repaired = sum(shards.repaired.values())
            with Progress(label, total=len(tracks), unit="song", progress=progress) as bar:
                for track in tracks:
                    try:
                        stored = _embed_one(track, embedder, store, shards, features, batch_size=batch_size,
                                            singer_kind="trained" if track.singer in known else "enrolled")
                    except AudioError as exc:
                        log.warning("%s", exc)
                        store.record_failure(str(track.path), str(exc))
                        failures.append((str(track.path), str(exc)))
                    else:
                        if stored is None:
                            n_skipped += 1
                        else:
                            added.append(stored[0])
                            audio_seconds += stored[1]
                            n_blocks += len(stored[0].block_ids)
                    bar.update(1, blocks=n_blocks, failed=len(failures))
                bar.close(f"{n_blocks:,} blocks" + (f", {n_skipped:,} already stored" if n_skipped else "")
                          + (f", {len(failures):,} failed" if failures else ""))
    return EmbedSummary(n_songs=len(tracks), n_added=len(added), n_skipped=n_skipped, n_failed=len(failures),
                        n_blocks=n_blocks, audio_seconds=audio_seconds,
                        seconds=time.perf_counter() - started, failures=tuple(failures), repaired_rows=repaired,
                        added=tuple(added))


def _embed_one(track: Track, embedder: Embedder, store: MetadataStore, shards: ShardSet,
               features: FeatureCache | None, *, batch_size: int, singer_kind: str) -> tuple[StoredSong, float] | None:
    """Store one song; None if it is already stored. Raises AudioError for unusable audio."""
    path = check_path(track.path)
    sha = sha256_file(path)
    if store.find_song(sha) is not None:
        return None
    info = probe_audio(path)
    pieces, offsets = [], []
    for batch in _blocks(path, embedder, features):
        pieces.append(embedder.embed(batch.blocks, batch_size=batch_size))  # (n, d) per streamed chunk
        offsets.append(batch.offsets_seconds)
    if not pieces:
        raise AudioError(f"{path}: every block is below the silence threshold "
                         f"({embedder.feature_config.silence_db} dB)")
    embeddings = np.concatenate(pieces)
    span = shards.append(embeddings)
    song = NewSong(path=str(Path(path).absolute()), content_sha256=sha, singer=track.singer, song_key=track.song_id,
                   split=track.split, duration_seconds=info.duration_seconds, dataset=track.dataset,
                   album=track.album, singer_kind=singer_kind)
    ids = store.add_song(song, offsets_seconds=np.concatenate(offsets), shard=span.shard, first_row=span.first_row)
    return StoredSong(song.path, ids, embeddings), info.duration_seconds


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
