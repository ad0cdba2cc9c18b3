"""``evaluate``'s decisions: test blocks from the feature cache, one forward pass per model,
then each method's block and song predictions.

- softmax methods (``crnn``, ``attcrnn``; the paper's CRNN and Attention-CRNN rows): block =
  argmax of the classifier head, block score = its softmax probability;
- KNN methods (``attcrnn-knn``, ``crnn-knn``; the paper's KNN-Net): one search at the largest
  K, then ``singerid.decision.knn_block_votes`` at every K of the accuracy-vs-K grid;
- song = ``singerid.decision.song_vote`` over the song's blocks, for every method, with the
  numbers predictions.csv gives per song (``SongDetails``): vote share, and the KNN methods'
  mean top-1 similarity or the softmax methods' mean probability of the predicted singer.

Labels are indexes into the dataset's sorted singer list, so the decision rule's last tie
break (lower index) is the singer name that sorts first, as in ``singerid query``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from singerid.config import FeatureConfig
from singerid.decision import MISSING, knn_block_votes, song_vote
from singerid.embedder.cache import FeatureCache, open_features
from singerid.embedder.data import LabelledFeatures, build_block_table
from singerid.embedder.embed import Embedder
from singerid.errors import ArtefactError, AudioError, DatasetError, ParameterError
from singerid.evaluation import KAccuracy, Predictions, RunResult, SongDetails
from singerid.progress import Progress, ProgressArg
from singerid.records import Track

log = logging.getLogger(__name__)

CHUNK_BLOCKS = 8192  # ours: test blocks read and embedded at a time (8192 x 16 KiB = 128 MiB)


@dataclass(frozen=True, slots=True, eq=False)
class EvalBlocks:
    """Every block of the usable test songs, in song order.

    tracks: the test songs that gave at least one block; song_label: int64 (n_songs,) true
    singer (index into the dataset's singers); block_song: int64 (n_blocks,) song of each
    block; features / starts: the cache file of each song and the first frame of each block.
    """

    tracks: tuple[Track, ...]
    song_label: np.ndarray
    block_song: np.ndarray
    block_start: np.ndarray
    features: tuple[LabelledFeatures, ...]
    skipped: tuple[str, ...]  # "path: reason" of test songs left out (bad audio, no whole block)

    @property
    def n_blocks(self) -> int:
        return int(self.block_song.shape[0])

    @property
    def block_label(self) -> np.ndarray:
        """int64 (n_blocks,) true singer of each block."""
        return self.song_label[self.block_song]


@dataclass(frozen=True, slots=True, eq=False)
class ModelOutput:
    """One model's forward pass over the test blocks: float32 (n, d) unit-norm and (n, n_classes)."""

    embeddings: np.ndarray
    logits: np.ndarray


def collect_test_blocks(tracks: Sequence[Track], *, singers: Sequence[str], cache: FeatureCache) -> EvalBlocks:
    """List the blocks of the test ``tracks`` (features computed once, into ``cache``).

    Songs with unusable audio or shorter than one block are logged and left out.
    Raises DatasetError when no test song is left, or a test singer is not in ``singers``.
    """
    index = {name: i for i, name in enumerate(singers)}
    kept: list[Track] = []
    items: list[LabelledFeatures] = []
    skipped: list[str] = []
    for t in tracks:
        if t.singer not in index:
            raise DatasetError(f"test singer {t.singer!r} is not in the dataset's singer list")
        try:
            entry = cache.ensure(t.path)
        except AudioError as exc:
            log.warning("skipping test song: %s", exc)
            skipped.append(str(exc))
            continue
        kept.append(t)
        items.append(LabelledFeatures(entry.path, entry.n_frames, index[t.singer]))
    table = build_block_table(items, cache.cfg)
    has_blocks = np.bincount(table.track, minlength=len(items)) > 0
    for t, ok in zip(kept, has_blocks):
        if not ok:
            log.warning("skipping test song %s: no whole block", t.path)
            skipped.append(f"{t.path}: no whole block")
    if not has_blocks.any():
        raise DatasetError(f"none of the {len(tracks)} test songs gave a usable block")
    renumber = np.cumsum(has_blocks) - 1  # old track index -> index among songs with blocks
    keep = np.flatnonzero(has_blocks)
    return EvalBlocks(tracks=tuple(kept[i] for i in keep),
                      song_label=np.array([items[i].label for i in keep], dtype=np.int64),
                      block_song=renumber[table.track].astype(np.int64), block_start=table.start,
                      features=tuple(items[i] for i in keep), skipped=tuple(skipped))


def forward_pass(embedders: dict[str, Embedder], test: EvalBlocks, *, cfg: FeatureConfig, batch_size: int = 64,
                 progress: ProgressArg = False) -> dict[str, ModelOutput]:
    """Run every embedder once over the test blocks, reading them in chunks from the cache.

    ``progress``: a ``singerid.progress`` mode (or the old bool) for the "classify" bar or line.
    """
    for kind, embedder in embedders.items():
        embedder.check_features(cfg)
    parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {kind: [] for kind in embedders}
    with Progress(f"classify ({', '.join(embedders)})", total=test.n_blocks, unit="block", progress=progress) as bar:
        for lo in range(0, test.n_blocks, CHUNK_BLOCKS):
            blocks = read_blocks(test, lo, min(lo + CHUNK_BLOCKS, test.n_blocks), block_frames=cfg.block_frames)
            for kind, embedder in embedders.items():
                parts[kind].append(embedder.embed_and_logits(blocks, batch_size=batch_size))
            bar.update(blocks.shape[0])
    return {kind: ModelOutput(np.concatenate([e for e, _ in p]), np.concatenate([lg for _, lg in p]))
            for kind, p in parts.items()}


def read_blocks(test: EvalBlocks, lo: int, hi: int, *, block_frames: int) -> np.ndarray:
    """Blocks ``lo:hi`` of ``test``: float32 (hi - lo, n_mels, block_frames), log-mel dB."""
    rows = []
    maps: dict[int, np.ndarray] = {}
    for song, start in zip(test.block_song[lo:hi].tolist(), test.block_start[lo:hi].tolist()):
        frames = maps.get(song)
        if frames is None:
            frames = maps[song] = open_features(test.features[song].features_path)  # (frames, n_mels)
        rows.append(frames[start:start + block_frames].T)  # (n_mels, block_frames)
    return np.ascontiguousarray(np.stack(rows), dtype=np.float32)


def softmax_run(method: str, seed: int, logits: np.ndarray, *, model_singers: Sequence[str],
                singers: Sequence[str], test: EvalBlocks) -> RunResult:
    """The CRNN / Attention-CRNN row: block = argmax of the head, song = vote of its blocks.

    ``logits``: float32 (n_blocks, len(model_singers)); column j is ``model_singers[j]``.
    """
    if logits.shape != (test.n_blocks, len(model_singers)):
        raise ParameterError(f"logits of shape {logits.shape} for {test.n_blocks} blocks and "
                             f"{len(model_singers)} model singers")
    to_dataset = _label_map(model_singers, singers)
    z = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    proba = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)  # (n, n_model_singers) softmax
    best = proba.argmax(axis=1)
    pred = to_dataset[best]
    score = proba[np.arange(best.size), best]
    song_pred, share = song_votes(pred, score, test=test, n_classes=len(singers))
    column = np.full(len(singers), -1, dtype=np.int64)
    column[to_dataset] = np.arange(len(model_singers))  # dataset label -> model column
    p_song = proba[np.arange(test.n_blocks), column[song_pred[test.block_song]]]  # (n_blocks,) P(song's winner)
    details = song_details(test, share, probability=_per_song_mean(test, p_song))
    return RunResult(method, seed, song=_predictions(test.song_label, song_pred, singers),
                     block=_predictions(test.block_label, pred, singers), songs=details)


def knn_run(method: str, seed: int, labels: np.ndarray, similarities: np.ndarray, *, index_singers: Sequence[str],
            singers: Sequence[str], test: EvalBlocks, k: int, k_values: Sequence[int]) -> RunResult:
    """The KNN-Net row: block = majority singer of its k nearest reference blocks; song = vote.

    ``labels`` int64 (n_blocks, >= max K) index into ``index_singers`` (-1 = no neighbour);
    ``similarities`` float32, same shape. Accuracy is also reported at every K of ``k_values``
    that the search covered, all from that one search.
    """
    to_dataset = np.append(_label_map(index_singers, singers), MISSING)  # -1 stays -1
    mapped = to_dataset[labels]  # (n_blocks, K) dataset labels
    n_classes = len(singers)
    votes = knn_block_votes(mapped, similarities, k=k, n_classes=n_classes)
    if (votes.pred == MISSING).any():
        raise ArtefactError(f"{int((votes.pred == MISSING).sum())} test blocks found no reference block; "
                            "the index is empty")
    curve = []
    for kk in sorted(set(k_values)):
        if kk > mapped.shape[1]:
            continue
        at_k = knn_block_votes(mapped, similarities, k=kk, n_classes=n_classes)
        song_pred, _ = song_votes(at_k.pred, at_k.score, test=test, n_classes=n_classes)
        curve.append(KAccuracy(kk, song_accuracy=float(np.mean(song_pred == test.song_label)),
                               block_accuracy=float(np.mean(at_k.pred == test.block_label))))
    song_pred, share = song_votes(votes.pred, votes.score, test=test, n_classes=n_classes)
    found = mapped[:, 0] != MISSING
    top1 = _per_song_mean(test, np.where(found, similarities[:, 0], 0.0), weights=found)
    return RunResult(method, seed, song=_predictions(test.song_label, song_pred, singers),
                     block=_predictions(test.block_label, votes.pred, singers), accuracy_vs_k=tuple(curve),
                     songs=song_details(test, share, similarity=top1))


def song_votes(block_pred: np.ndarray, block_score: np.ndarray, *, test: EvalBlocks,
               n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """``song_vote`` of each song's blocks (blocks are grouped by song).

    Returns int64 (n_songs,) the winning label and float64 (n_songs,) the share of the song's
    voting blocks that named it.
    """
    bounds = np.flatnonzero(np.diff(test.block_song)) + 1
    pred = np.empty(len(test.tracks), dtype=np.int64)
    share = np.empty(len(test.tracks), dtype=np.float64)
    for song, (p, s) in enumerate(zip(np.split(block_pred, bounds), np.split(block_score, bounds))):
        pred[song], shares = song_vote(p, s, n_classes=n_classes)
        share[song] = shares[pred[song]]
    return pred, share


def song_details(test: EvalBlocks, vote_share: np.ndarray, *, similarity: np.ndarray | None = None,
                 probability: np.ndarray | None = None) -> SongDetails:
    """Which song each row is, with its block count and the per-song numbers of predictions.csv."""
    return SongDetails(song_ids=tuple(t.song_id for t in test.tracks), paths=tuple(str(t.path) for t in test.tracks),
                       albums=tuple(t.album for t in test.tracks),
                       n_blocks=np.bincount(test.block_song, minlength=len(test.tracks)),
                       vote_share=vote_share, similarity=similarity, probability=probability)


def _per_song_mean(test: EvalBlocks, values: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """float64 (n_songs,): mean of the per-block ``values`` over each song's blocks (``weights`` 0/1 = skip)."""
    w = np.ones(test.n_blocks) if weights is None else np.asarray(weights, dtype=np.float64)
    total = np.bincount(test.block_song, weights=values * w, minlength=len(test.tracks))
    count = np.bincount(test.block_song, weights=w, minlength=len(test.tracks))
    return np.divide(total, count, out=np.zeros_like(total), where=count > 0)


def _predictions(true: np.ndarray, pred: np.ndarray, singers: Sequence[str]) -> Predictions:
    names = np.array(list(singers) + ["(none)"], dtype=object)  # label -1 -> "(none)": refused later
    return Predictions(y_true=names[true], y_pred=names[pred])


def _label_map(names: Sequence[str], singers: Sequence[str]) -> np.ndarray:
    """int64 (len(names),): the dataset label of each name. Raises ArtefactError for a stranger."""
    index = {name: i for i, name in enumerate(singers)}
    strangers = [n for n in names if n not in index]
    if strangers:
        raise ArtefactError(f"model or index knows singer {strangers[0]!r}, which is not in this dataset")
    return np.array([index[n] for n in names], dtype=np.int64)
