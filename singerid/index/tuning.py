"""Choose the search setting of an approximate index on its own data: IVF nprobe or HNSW efSearch.

How many IVF cells a query must visit (or how wide an HNSW search must be) before the KNN vote
decides songs as exact search does depends on how the singers cluster, which no constant can
know: on the synthetic catalogues of scripts/bench_scale.py, 1M blocks needed nprobe 256 of
1,024 cells and 10M blocks 1,024 of 4,096, while well-separated voices need a handful. So
``build-index`` measures it, as autofaiss tunes for a target recall, but for the decision the
system actually makes:

1. hold out a sample of the indexed songs (HELD_OUT_DIVISOR-th of them, at most MAX_SONGS) and
   query with up to BLOCKS_PER_SONG evenly spaced blocks of each, as a new song would be;
2. every block of the held-out songs is excluded from every search (a FAISS IDSelector), so a
   query never finds its own song, exactly as a song outside the collection could not;
3. the yardstick is exact search over the same remaining blocks (one streamed pass, FAISS flat
   search per chunk, merged);
4. settings are tried from the cheapest up (powers of two); the first whose song decisions
   (singerid.decision's vote, K neighbours) agree with exact search on >= ``target`` of the
   held-out songs is chosen. ivf-flat always gets there (every cell visited is exact search);
   ivf-pq and hnsw may not (their codes and graph bound the recall), so the sweep also ends
   when recall stops improving, and the most agreeing setting is kept and reported as short
   of the target. Both searches run in batches of one 4-minute song (240 blocks), as queries
   do, so the result also says whether exact search would have answered faster.

The chosen value is stored in the index as its default (``query --nprobe/--ef`` still override
it). Tuning on the reference set is not tuning to a test split: no query the user will ask is
looked at.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import faiss
import numpy as np

from singerid.constants import K_NEIGHBOURS, SEARCH_AGREEMENT
from singerid.decision import MISSING, knn_block_votes, song_vote
from singerid.index.choice import make_spec
from singerid.index.vectors import RowSource, VectorIndex

log = logging.getLogger(__name__)

TARGET_SONG_AGREEMENT = SEARCH_AGREEMENT  # song decisions as exact search's on >= 99 % of songs
HELD_OUT_DIVISOR = 10  # ours: at most a tenth of the songs leave the index while tuning
MIN_SONGS = 20  # ours: fewer held-out songs cannot show 99 % (a single disagreement is 5 %)
MAX_SONGS = 100  # ours: at 99 %, one disagreement is allowed
BLOCKS_PER_SONG = 48  # ours: evenly spaced query blocks per held-out song (fewer votes: a stricter test)
EXACT_CHUNK_ROWS = 1 << 20  # reference rows per exact-search chunk
QUERY_BATCH = 240  # blocks per search call: one 4-minute song, as `singerid query` searches
MIN_RECALL_GAIN = 0.002  # ours: a doubling that adds less recall than this has reached the index's ceiling
EF_SEARCH_VALUES = (16, 32, 64, 128, 256, 512, 1024, 2048)


@dataclass(frozen=True, slots=True)
class Trial:
    """One search setting measured on the held-out songs."""

    value: int
    song_agreement: float  # fraction of held-out songs decided as exact search decides them
    block_agreement: float  # fraction of query blocks decided as exact search decides them
    recall: float  # recall@K of the exact neighbours
    seconds: float  # search time of all query blocks


@dataclass(frozen=True, slots=True)
class SearchTuning:
    """The chosen setting, the measurements that chose it, and why the sweep ended."""

    knob: str  # "nprobe" (ivf-*) or "ef_search" (hnsw)
    value: int
    target: float
    reached: bool  # the chosen setting agrees on >= target of the held-out songs
    n_songs: int
    n_queries: int
    exact_seconds: float  # exact search of the same queries over the same blocks, in the same batches
    trials: tuple[Trial, ...]
    stopped: str  # "reached", "all settings tried", or "recall stopped improving"

    @property
    def chosen(self) -> Trial:
        return next(t for t in self.trials if t.value == self.value)

    def line(self) -> str:
        t = self.chosen
        name = "nprobe" if self.knob == "nprobe" else "ef"
        line = (f"search tuned: {name} {self.value}: song decisions agree with exact search on {t.song_agreement:.1%} "
                f"of {self.n_songs} held-out songs (target {self.target:.0%}), recall@{K_NEIGHBOURS} {t.recall:.3f}")
        if not self.reached:
            line += (f"; below the target ({self.stopped}): an exact index (--type flat) decides as exact search "
                     f"by definition")
        elif self.slower_than_exact:
            line += (f"; exact search answered the same queries faster ({self.exact_seconds:.2f} s vs "
                     f"{t.seconds:.2f} s): --type flat would be exact and quicker here")
        return line

    @property
    def slower_than_exact(self) -> bool:
        return self.chosen.seconds > self.exact_seconds

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def tune_search(index: VectorIndex, vectors: RowSource, ids: np.ndarray, song_codes: np.ndarray,
                singer_codes: np.ndarray, *, target: float = TARGET_SONG_AGREEMENT, k: int = K_NEIGHBOURS,
                seed: int = 0, on_step: Callable[[str], None] | None = None) -> SearchTuning | None:
    """Measure ``index`` against exact search on held-out songs and choose its search setting.

    ``vectors`` float32 (n, d) rows as indexed (slices and integer arrays; a ShardRows works),
    ``ids`` their int64 block ids, ``song_codes`` and ``singer_codes`` int (n,) per row. Returns
    None for exact index types and when there are too few songs (< MIN_SONGS x HELD_OUT_DIVISOR)
    to measure 99 %; the index's search setting is left as it was either way (the caller applies
    the result). ``on_step`` gets one line as each stage ends (progress for long tunings).
    """
    say = on_step or (lambda line: None)
    kind = index.spec.index_type
    if kind not in ("ivf-flat", "ivf-pq", "hnsw"):
        return None
    ids = np.asarray(ids, dtype=np.int64)
    song_codes, singer_codes = np.asarray(song_codes), np.asarray(singer_codes)
    songs = np.unique(song_codes)
    n_held = min(MAX_SONGS, len(songs) // HELD_OUT_DIVISOR)
    if n_held < MIN_SONGS:
        log.info("%d songs are too few to tune the search (needs %d); keeping its default", len(songs),
                 MIN_SONGS * HELD_OUT_DIVISOR)
        return None
    rng = np.random.default_rng(seed)
    held = np.sort(rng.choice(songs, size=n_held, replace=False))
    held_rows = np.isin(song_codes, held)
    query_rows, query_song = _query_blocks(song_codes, held)
    queries = np.ascontiguousarray(vectors[query_rows], dtype=np.float32)
    n_classes = int(singer_codes.max()) + 1
    label_of = _label_lookup(ids, singer_codes)

    started = time.perf_counter()
    exact_sims, exact_ids, exact_seconds = exact_neighbours(queries, vectors, ids, k, excluded_rows=held_rows)
    exact = decide(label_of(exact_ids), exact_sims, query_song, k, n_classes)
    say(f"tuning the search on {n_held} held-out songs ({len(queries):,} blocks): exact search took "
        f"{exact_seconds:.1f} s")
    log.debug("tuning ground truth: %d queries in %.1f s", len(queries), time.perf_counter() - started)

    excluded = ids[held_rows]
    knob = "ef_search" if kind == "hnsw" else "nprobe"
    values = EF_SEARCH_VALUES if kind == "hnsw" else _nprobe_values(index.spec.nlist or 1)
    trials: list[Trial] = []
    stopped = "all settings tried"
    for value in values:
        began = time.perf_counter()
        sims, found = index.search(queries, k, exclude_ids=excluded, batch_size=QUERY_BATCH, **{knob: value})
        seconds = time.perf_counter() - began
        ours = decide(label_of(found), sims, query_song, k, n_classes)
        trials.append(Trial(value=int(value), song_agreement=float(np.mean(ours.songs == exact.songs)),
                            block_agreement=float(np.mean(ours.blocks == exact.blocks)),
                            recall=recall_at_k(found, exact_ids), seconds=seconds))
        say(f"tuning: {'ef' if knob == 'ef_search' else knob} {value}: {trials[-1].song_agreement:.1%} of the "
            f"songs as exact search, {seconds:.1f} s")
        if trials[-1].song_agreement >= target:
            stopped = "reached"
            break
        if len(trials) > 1 and trials[-1].recall - trials[-2].recall < MIN_RECALL_GAIN:
            stopped = "recall stopped improving"
            break
    reaching = [t for t in trials if t.song_agreement >= target]
    chosen = reaching[0] if reaching else max(trials, key=lambda t: (t.song_agreement, t.block_agreement, -t.value))
    return SearchTuning(knob=knob, value=chosen.value, target=float(target), reached=bool(reaching),
                        n_songs=int(n_held), n_queries=int(len(queries)), exact_seconds=float(exact_seconds),
                        trials=tuple(trials), stopped=stopped)


@dataclass(frozen=True, slots=True)
class Decisions:
    """What the KNN vote decides for a set of query songs (as `query` and `evaluate` decide)."""

    blocks: np.ndarray  # int64 (q,) block winners
    songs: np.ndarray  # int64 (songs,) song winners, by song number (MISSING: no block voted)


def decide(labels: np.ndarray, sims: np.ndarray, query_song: np.ndarray, k: int, n_classes: int) -> Decisions:
    """Block and song decisions of query blocks whose neighbours have singer ``labels`` int (q, >=k)
    and similarities ``sims``; ``query_song`` int (q,) numbers each block's song from 0."""
    votes = knn_block_votes(labels, sims, k=k, n_classes=n_classes)
    songs = []
    for song in range(int(query_song.max()) + 1):
        rows = query_song == song
        voted = votes.pred[rows] != MISSING
        songs.append(song_vote(votes.pred[rows], votes.score[rows], n_classes=n_classes)[0] if voted.any()
                     else MISSING)
    return Decisions(blocks=votes.pred, songs=np.asarray(songs, dtype=np.int64))


def _query_blocks(song_codes: np.ndarray, held: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row positions of up to BLOCKS_PER_SONG evenly spaced blocks per held-out song, and each one's song number."""
    rows, song_numbers = [], []
    for number, song in enumerate(held):
        own = np.flatnonzero(song_codes == song)
        take = own[np.unique(np.linspace(0, len(own) - 1, min(BLOCKS_PER_SONG, len(own))).round().astype(int))]
        rows.append(take)
        song_numbers.append(np.full(len(take), number))
    return np.concatenate(rows), np.concatenate(song_numbers)


def _label_lookup(ids: np.ndarray, singer_codes: np.ndarray):
    """A function mapping an int64 array of block ids (-1 = none) to singer codes (MISSING = none)."""
    order = np.argsort(ids, kind="stable")
    sorted_ids, sorted_codes = ids[order], np.asarray(singer_codes, dtype=np.int64)[order]

    def label_of(found: np.ndarray) -> np.ndarray:
        at = np.clip(np.searchsorted(sorted_ids, found), 0, len(sorted_ids) - 1)
        hit = (found >= 0) & (sorted_ids[at] == found)
        return np.where(hit, sorted_codes[at], MISSING)

    return label_of


def exact_neighbours(queries: np.ndarray, vectors: RowSource, ids: np.ndarray, k: int, *,
                     excluded_rows: np.ndarray | None = None, batch_size: int = QUERY_BATCH
                     ) -> tuple[np.ndarray, np.ndarray, float]:
    """Exact top-k over the rows not excluded: (sims, ids, seconds spent searching, reading left out).

    ``vectors`` is read EXACT_CHUNK_ROWS rows at a time (a file, memory map or ShardRows) and each
    chunk is searched as singerid's flat index searches (``VectorIndex``, ``batch_size`` query rows
    per call; the default, one song, is how a query searches), so the time compares with an
    approximate index's and with what ``--type flat`` would take.
    """
    heap = faiss.ResultHeap(len(queries), k, keep_max=True)
    seconds = 0.0
    for start in range(0, len(vectors), EXACT_CHUNK_ROWS):
        stop = min(len(vectors), start + EXACT_CHUNK_ROWS)
        keep = np.ones(stop - start, dtype=bool) if excluded_rows is None else ~excluded_rows[start:stop]
        if not keep.any():
            continue
        block = np.ascontiguousarray(vectors[start:stop][keep], dtype=np.float32)
        exact = VectorIndex.build(make_spec("flat", dim=block.shape[1], n_vectors=len(block)), block,
                                  ids[start:stop][keep])
        began = time.perf_counter()
        sims, found = exact.search(queries, k, batch_size=batch_size)
        seconds += time.perf_counter() - began
        heap.add_result(sims, found)
    heap.finalize()
    return heap.D, heap.I, seconds


def _nprobe_values(nlist: int) -> list[int]:
    """1, 2, 4, ... up to nlist (nlist itself last: every cell = exact for ivf-flat)."""
    values = [1 << p for p in range(max(1, nlist).bit_length()) if (1 << p) < nlist]
    return values + [nlist]


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean fraction of each row's exact neighbours that the approximate search found."""
    hits = sum(len(np.intersect1d(a[a >= 0], b[b >= 0])) for a, b in zip(found, truth))
    return float(hits / max(1, int((truth >= 0).sum())))
