"""The KNN-Net decision rule (paper §2.1, §3.3) as pure numpy functions.

Block: among its K nearest reference blocks, the most frequent singer wins; a tie in the
count goes to the singer whose tied neighbours have the larger summed similarity, then to
the lower label index (labels are sorted singer names, so: alphabetical). Song: the singer
named by most blocks wins; ties by summed block score, then label index. Shared by
``singerid query`` and ``singerid evaluate`` so both decide in exactly one way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from singerid.errors import ParameterError

MISSING = -1  # label of an absent neighbour (FAISS returns id -1 when fewer than k exist)


@dataclass(frozen=True, slots=True)
class BlockVotes:
    """Per-block outcome of the KNN vote.

    pred: int64 (n,) winning label, MISSING where a block had no neighbour at all.
    votes: int64 (n,) neighbours (of k) that named ``pred``.
    score: float64 (n,) summed similarity of those neighbours.
    """

    pred: np.ndarray
    votes: np.ndarray
    score: np.ndarray


def knn_block_votes(labels: np.ndarray, similarities: np.ndarray, *, k: int, n_classes: int) -> BlockVotes:
    """Majority vote of each row's first ``k`` neighbours.

    labels: int (n, >=k) neighbour singer labels, best first; MISSING for no neighbour.
    similarities: float (n, >=k) cosine similarities in the same order.
    """
    if k < 1 or labels.ndim != 2 or labels.shape[1] < k:
        raise ParameterError(f"k={k} needs neighbour arrays with at least k columns, got shape {labels.shape}")
    if labels.shape != similarities.shape:
        raise ParameterError(f"labels {labels.shape} and similarities {similarities.shape} differ in shape")
    lab = labels[:, :k].astype(np.int64)
    sim = similarities[:, :k].astype(np.float64)
    n = lab.shape[0]
    valid = lab != MISSING
    rows = np.broadcast_to(np.arange(n)[:, None], lab.shape)
    counts = np.zeros((n, n_classes), dtype=np.int64)
    scores = np.zeros((n, n_classes), dtype=np.float64)
    np.add.at(counts, (rows[valid], lab[valid]), 1)
    np.add.at(scores, (rows[valid], lab[valid]), sim[valid])
    pred = _argmax_with_ties(counts, scores)
    empty = counts.sum(axis=1) == 0
    pred[empty] = MISSING
    safe = np.where(empty, 0, pred)
    return BlockVotes(pred=pred, votes=np.where(empty, 0, counts[np.arange(n), safe]),
                      score=np.where(empty, 0.0, scores[np.arange(n), safe]))


def song_vote(block_pred: np.ndarray, block_score: np.ndarray, *, n_classes: int) -> tuple[int, np.ndarray]:
    """Vote of one song's blocks. Returns (winning label, float64 (n_classes,) vote shares).

    Blocks with label MISSING do not vote. Raises ParameterError if no block voted.
    """
    ok = block_pred != MISSING
    if not ok.any():
        raise ParameterError("no block of this song has a prediction to vote with")
    counts = np.bincount(block_pred[ok], minlength=n_classes).astype(np.int64)[None, :]
    scores = np.bincount(block_pred[ok], weights=block_score[ok], minlength=n_classes)[None, :]
    label = int(_argmax_with_ties(counts, scores)[0])
    return label, counts[0] / ok.sum()


def _argmax_with_ties(counts: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Row-wise argmax of integer counts; ties by larger score, then lower index.

    Scores are mapped monotonically into [0, 1) (scaled by the largest |score| present) and
    added, so a count difference of one always outweighs any score difference.
    """
    bound = max(float(np.abs(scores).max(initial=0.0)), 1e-12)
    tie_break = (scores + bound) / (2 * bound) * 0.999  # in [0, 0.999]
    return np.argmax(counts + tie_break, axis=1).astype(np.int64)
