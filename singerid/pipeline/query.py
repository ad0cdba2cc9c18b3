"""`singerid query`: who sings this song, and why (KNN-Net stage 2, or the softmax head).

KNN (the paper's Attention-CRNN-KNN): every block of the query is embedded and searched in the
FAISS index in batches (no query x reference matrix is ever formed); its K nearest reference
blocks vote (singerid.decision), and the blocks vote for the song. Evidence: the reference
songs of the winning singer that the query's blocks matched, with offsets and similarities.
Softmax (the paper's CRNN / Attention-CRNN rows): argmax of the classifier head per block.
Memory stays bounded for long files: blocks are streamed and only k ids per block are kept.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
import numpy as np

from singerid import constants as C
from singerid.audio import Source
from singerid.decision import MISSING, knn_block_votes, song_vote
from singerid.embedder.embed import Embedder
from singerid.errors import ArtefactError, ParameterError
from singerid.index.consistency import VectorsState, covered_state, find_problems, raise_if_inconsistent
from singerid.index.backend import Backend
from singerid.index.files import ids_sha256
from singerid.index.home import Home, IndexEntry, Manifest
from singerid.index.store import MetadataStore
from singerid.index.shards import ShardSet, writer_active
from singerid.index.store_records import BlockLabels, BlockLocations
from singerid.index.vectors import VectorIndex
from singerid.pipeline.calibrate import load_calibration
from singerid.pipeline.common import load_backend, load_embedder, open_store, require_index
from singerid.pipeline.similar import Centroids, singer_centroids, song_centroid
from singerid.records import Evidence, SongDecision

log = logging.getLogger(__name__)

UNKNOWN = "unknown"
SNAPSHOT_WAIT_SECONDS = 10.0  # ours: how long open() follows a writer's index swaps before giving up
SNAPSHOT_RETRY_SECONDS = 0.05
METHODS = ("knn", "softmax")


@dataclass(frozen=True, slots=True)
class QueryOptions:
    """How a song is decided."""

    k: int = C.K_NEIGHBOURS  # neighbours per block (paper §3.3)
    method: str = "knn"  # "knn" or "softmax"
    top: int = 5  # runners-up reported
    n_evidence: int = 5  # reference songs reported as evidence
    min_similarity: float | None = None  # below this mean top-1 similarity the answer is "unknown"
    min_share: float | None = None  # below this winning vote share the answer is "unknown"
    reject_unknown: bool = False  # use the threshold calibrated by build-index when min_similarity is None
    batch_size: int = 64  # blocks per embedding batch (fastest on CPU: scripts/bench_embed.py)
    nprobe: int | None = None  # IVF cells searched per block; None = the index's (set by build-index)
    ef_search: int | None = None  # HNSW search breadth; None = the index's (set by build-index)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ParameterError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.k < 1:
            raise ParameterError(f"k must be >= 1, got {self.k}")
        if self.min_share is not None and not 0.0 <= self.min_share <= 1.0:
            raise ParameterError(f"min_share must lie in [0, 1], got {self.min_share}")
        if self.min_similarity is not None and not -1.0 <= self.min_similarity <= 1.0:
            raise ParameterError(f"min_similarity must lie in [-1, 1], got {self.min_similarity}")
        for name in ("nprobe", "ef_search"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ParameterError(f"{name} must be >= 1, got {getattr(self, name)}")


@dataclass(slots=True)
class _Blocks:
    """What a streamed song leaves behind: per block, its offset and its k neighbours."""

    offsets: list[np.ndarray] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)  # int64 (n, k) singer codes
    sims: list[np.ndarray] = field(default_factory=list)  # float32 (n, k)
    ids: list[np.ndarray] = field(default_factory=list)  # int64 (n, k) block ids
    vector_sum: np.ndarray | None = None  # float64 (d,) sum of the song's projected block embeddings
    timings: dict[str, float] = field(default_factory=lambda: defaultdict(float))


    def add_vectors(self, emb: np.ndarray) -> None:
        total = emb.sum(axis=0, dtype=np.float64)
        self.vector_sum = total if self.vector_sum is None else self.vector_sum + total

    def song_vector(self) -> np.ndarray | None:
        """float32 (d,) unit vector: the song's centroid in the index's space (None without blocks)."""
        if self.vector_sum is None:
            return None
        return song_centroid(self.vector_sum[None, :])


class QueryEngine:
    """A home opened for queries: embedder, FAISS index, metadata store, checked against each other."""

    def __init__(self, home: Home, embedder: Embedder, index: VectorIndex, store: MetadataStore,
                 labels: BlockLabels, backend: Backend | None = None) -> None:
        self.home = home
        self.embedder = embedder
        self.backend = backend  # LDA/WCCN projection fitted at build-index (None: raw cosine, the paper)
        self.entry: IndexEntry | None = None  # the manifest entry of ``index`` (set by ``open``)
        self.backend_sha256 = home.read_manifest().index.backend_sha256 if backend is not None else None
        self.index = index
        self.store = store
        self.labels = labels
        self._centroids: Centroids | None = None

    @classmethod
    def open(cls, home: Home, *, db_url: str | None = None, device: str = "cpu",
             embedder: Embedder | None = None) -> QueryEngine:
        """Open ``home`` for queries. Raises ArtefactError naming the repair if its parts disagree.

        ``embedder``: one already loaded from this home (reopening after a write reuses it);
        it is checked against the manifest like a freshly loaded one. The engine answers from
        one snapshot: the manifest's index (its SHA-256 checked: ~0.14 s per 130 MiB, 1M vectors
        at d=32, as much as loading it), its back end and threshold, and only the store rows the
        index holds; songs a writer adds meanwhile are not seen until the writer swaps the index.
        A snapshot that a writer replaces while it is being opened is read again, for up to
        SNAPSHOT_WAIT_SECONDS while a writer holds the lock; a damaged home is refused at once.
        """
        manifest = home.read_manifest()
        require_index(home, manifest)
        if embedder is None:
            embedder = load_embedder(home, manifest.model.kind, device=device)
        deadline = time.monotonic() + SNAPSHOT_WAIT_SECONDS
        while True:
            try:
                return cls._open_snapshot(home, manifest, db_url=db_url, embedder=embedder)
            except ArtefactError:
                latest = home.read_manifest()
                if time.monotonic() > deadline or (latest == manifest and not writer_active(home.shards_dir)):
                    raise
                log.debug("the index changed while it was opened; reading the new snapshot")
                manifest = latest
                time.sleep(SNAPSHOT_RETRY_SECONDS)

    @classmethod
    def _open_snapshot(cls, home: Home, manifest: Manifest, *, db_url: str | None,
                       embedder: Embedder) -> QueryEngine:
        entry = require_index(home, manifest)
        parts = {"model_sha256": embedder.weights_sha256, "feature_config": embedder.feature_config,
                 "front_end": embedder.front_end_config.key}
        raise_if_inconsistent(find_problems(home, manifest, verify_checksum=True, **parts))  # files, before loading
        index = VectorIndex.load(home.index_path(entry))
        index_ids = index.ids()
        store = open_store(home, db_url)
        try:
            labels = store.block_labels(splits=entry.splits)
            stored_sha, stored_features = store.embedding_source()
            covered = covered_state(labels.ids, index_ids, model_sha256=stored_sha, feature_config=stored_features)
            index_state = VectorsState(len(index_ids), ids_sha256(index_ids))
            raise_if_inconsistent(find_problems(home, manifest, store=covered, index=index_state, **parts))
            held = np.isin(labels.ids, index_ids, assume_unique=True)  # the snapshot: rows the index holds
            labels = BlockLabels(labels.ids[held], labels.singer_codes[held], labels.singers,
                                 None if labels.song_ids is None else labels.song_ids[held])
            backend = load_backend(home, entry)
        except BaseException:
            store.close()
            raise
        engine = cls(home, embedder, index, store, labels, backend)
        engine.entry = entry
        engine.backend_sha256 = entry.backend_sha256 if backend is not None else None
        return engine

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> QueryEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def singers(self) -> tuple[str, ...]:
        """Singer names of the indexed blocks, sorted; label i of ``neighbour_labels`` is singers[i]."""
        return self.labels.singers

    def neighbour_labels(self, embeddings: np.ndarray, k: int, *, batch_size: int = 4096
                         ) -> tuple[np.ndarray, np.ndarray]:
        """Singer codes int64 (n, k) (-1 for none) and similarities float32 (n, k) of the k nearest blocks.

        ``embeddings``: float32 (n, d) as the embedder gives them; the back end is applied here.
        """
        sims, ids = self.index.search(self.project(embeddings), k, batch_size=batch_size)
        return self.labels.singers_of(ids).astype(np.int64), sims

    def centroids(self) -> Centroids:
        """Singer centroids of the indexed blocks (singerid.pipeline.similar), computed on first use."""
        if self._centroids is None:
            entry = self.entry or self.home.read_manifest().index
            locations = self.store.block_locations(splits=entry.splits if entry else None)
            # the blocks this engine's index holds that the store still has (a writer may have removed some)
            keep = np.isin(locations.ids, self.labels.ids)
            locations = BlockLocations(locations.ids[keep], locations.shards[keep], locations.rows[keep])
            held = np.isin(self.labels.ids, locations.ids)
            labels = BlockLabels(self.labels.ids[held], self.labels.singer_codes[held], self.labels.singers)
            with ShardSet(self.home.shards_dir, self.embedder.embedding_dim) as shards:
                self._centroids = singer_centroids(labels, locations, shards, self.project)
        return self._centroids

    def project(self, embeddings: np.ndarray) -> np.ndarray:
        """Embeddings float32 (n, d) -> the index's space (the back end's projection, unit rows)."""
        return embeddings if self.backend is None else self.backend.apply(embeddings)

    def identify(self, path: Source, options: QueryOptions = QueryOptions()) -> SongDecision:
        """Decide who sings ``path`` (a file, or a ``Waveform`` in memory). Raises AudioError for unusable audio."""
        if options.reject_unknown and options.min_similarity is None and options.method == "knn":
            threshold = load_calibration(self.home.root, self.embedder.weights_sha256,
                                         self.backend_sha256, entry=self.entry).min_similarity
            options = dataclasses.replace(options, min_similarity=threshold)
        if options.method == "softmax":
            return self._identify_softmax(path, options)
        started = time.perf_counter()
        got = self._stream(path, options)
        labels, sims, ids = (np.concatenate(got.labels), np.concatenate(got.sims), np.concatenate(got.ids))
        offsets = np.concatenate(got.offsets)
        t0 = time.perf_counter()
        singers = self.singers
        votes = knn_block_votes(labels, sims, k=options.k, n_classes=len(singers))
        winner, shares = song_vote(votes.pred, votes.score, n_classes=len(singers))
        got.timings["vote"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        evidence = self._evidence(winner, labels, sims, ids, offsets, options.n_evidence)
        got.timings["metadata"] += time.perf_counter() - t0
        mean_top1 = float(np.mean(sims[:, 0][ids[:, 0] != MISSING])) if (ids[:, 0] != MISSING).any() else -1.0
        got.timings["total"] = time.perf_counter() - started
        return _decision(str(path), singers, winner, shares, n_blocks=len(labels), evidence=evidence,
                         mean_similarity=mean_top1, options=options, timings=dict(got.timings),
                         song_vector=got.song_vector())

    def _stream(self, path: Source, options: QueryOptions) -> _Blocks:
        got = _Blocks()
        separating = self.embedder.front_end.separation_seconds
        t0 = time.perf_counter()
        for batch in self.embedder.iter_blocks(path):
            t1 = time.perf_counter()
            got.timings["audio"] += t1 - t0
            emb = self.project(self.embedder.embed(batch.blocks, batch_size=options.batch_size))  # (n, d') unit rows
            t2 = time.perf_counter()
            sims, ids = self.index.search(emb, options.k, nprobe=options.nprobe, ef_search=options.ef_search)  # (n, k)
            t3 = time.perf_counter()
            got.labels.append(self.labels.singers_of(ids).astype(np.int64))
            got.sims.append(sims)
            got.ids.append(ids)
            got.offsets.append(batch.offsets_seconds)
            got.add_vectors(emb)
            got.timings["embed"] += t2 - t1
            got.timings["search"] += t3 - t2
            t0 = time.perf_counter()
            got.timings["vote"] += t0 - t3
        got.timings["audio"] += time.perf_counter() - t0  # the decoder's final checks
        if self.embedder.front_end_config.input != "mix":  # voice separation ran inside the audio stage
            got.timings["separate"] = self.embedder.front_end.separation_seconds - separating
            got.timings["audio"] -= got.timings["separate"]
        return got

    def _evidence(self, winner: int, labels: np.ndarray, sims: np.ndarray, ids: np.ndarray, offsets: np.ndarray,
                  n_evidence: int) -> tuple[Evidence, ...]:
        """Reference songs of ``winner`` most often among the query blocks' neighbours (one DB query)."""
        rows, cols = np.nonzero(labels == winner)
        if rows.size == 0 or n_evidence <= 0:
            return ()
        info = self.store.lookup_blocks(ids[rows, cols])
        per_song: dict[int, list[tuple[float, float, float]]] = defaultdict(list)
        for r, c in zip(rows.tolist(), cols.tolist()):
            block = info.get(int(ids[r, c]))
            if block is not None:
                per_song[block.song_id].append((float(sims[r, c]), float(offsets[r]), block.offset_seconds))
        first = {b.song_id: b for b in info.values()}
        ranked = sorted(per_song.items(), key=lambda kv: (-len(kv[1]), -max(m[0] for m in kv[1]), kv[0]))
        out = []
        for song_id, matches in ranked[:n_evidence]:
            best = max(matches)
            b = first[song_id]
            out.append(Evidence(song=b.song_key, path=b.song_path, singer=b.singer, album=b.album,
                                n_matches=len(matches), best_similarity=best[0], query_offset_seconds=best[1],
                                reference_offset_seconds=best[2]))
        return tuple(out)

    def _identify_softmax(self, path: Source, options: QueryOptions) -> SongDecision:
        started = time.perf_counter()
        preds, scores = [], []
        got = _Blocks()
        for batch in self.embedder.iter_blocks(path):
            emb, logits = self.embedder.embed_and_logits(batch.blocks, batch_size=options.batch_size)  # (n, d), (n, c)
            got.add_vectors(self.project(emb))
            probs = np.exp(logits - logits.max(axis=1, keepdims=True))
            probs /= probs.sum(axis=1, keepdims=True)
            preds.append(probs.argmax(axis=1))
            scores.append(probs.max(axis=1))
        pred, score = np.concatenate(preds).astype(np.int64), np.concatenate(scores).astype(np.float64)
        singers = self.embedder.singers
        winner, shares = song_vote(pred, score, n_classes=len(singers))
        return _decision(str(path), singers, winner, shares, n_blocks=len(pred), evidence=(),
                         mean_similarity=float(score.mean()), options=options,
                         timings={"total": time.perf_counter() - started}, song_vector=got.song_vector())


def _decision(song: str, singers: tuple[str, ...], winner: int, shares: np.ndarray, *, n_blocks: int,
              evidence: tuple[Evidence, ...], mean_similarity: float, options: QueryOptions,
              timings: dict[str, float], song_vector: np.ndarray | None = None) -> SongDecision:
    order = [int(i) for i in np.argsort(-shares, kind="stable") if int(i) != winner and shares[i] > 0]
    runners_up = tuple((singers[i], float(shares[i])) for i in order[:options.top])
    share = float(shares[winner])
    unknown = ((options.min_share is not None and share < options.min_share)
               or (options.min_similarity is not None and mean_similarity < options.min_similarity))
    return SongDecision(song=song, singer=UNKNOWN if unknown else singers[winner], known=not unknown, vote_share=share,
                        n_blocks=n_blocks, runners_up=runners_up, evidence=evidence,
                        mean_similarity=mean_similarity, method=options.method, predicted=singers[winner],
                        timings=timings, song_vector=song_vector)
