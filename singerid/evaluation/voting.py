"""Song decision from block decisions: majority vote with a documented, deterministic tie rule.

Paper §3.3: "The recognition result of an entire song can be voted from all blocks." Every
method that decides per block (softmax argmax or K nearest reference blocks) uses this.

Tie rule, in order:
1. most blocks voting for the singer;
2. largest summed block score of those blocks (softmax probability, or the summed
   similarity of the winning neighbours for KNN);
3. the singer name that sorts first (so the result never depends on input order).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from singerid.decision import song_vote
from singerid.errors import ParameterError
from singerid.evaluation.results import Predictions

log = logging.getLogger(__name__)


def vote_songs(block_song_ids: Sequence[str], block_preds: Sequence[str],
               block_scores: Sequence[float] | None = None) -> dict[str, str]:
    """Majority vote of the blocks of each song.

    Parameters: ``block_song_ids`` str (n,), the song each block belongs to;
    ``block_preds`` str (n,), the singer each block voted for; ``block_scores`` float (n,),
    the block's confidence (any units, larger = surer), used only to break ties; None = no
    score tie-break.
    Returns: {song_id: predicted singer}, songs in order of first appearance.
    Raises: ParameterError when lengths differ, n = 0, or a score is not finite.
    """
    songs = list(block_song_ids)
    preds = list(block_preds)
    scores = np.zeros(len(songs)) if block_scores is None else np.asarray(block_scores, dtype=np.float64)
    if not (len(songs) == len(preds) == scores.shape[0]) or scores.ndim != 1:
        raise ParameterError(
            f"block_song_ids ({len(songs)}), block_preds ({len(preds)}) and block_scores "
            f"({scores.shape[0] if scores.ndim else 'scalar'}) must have the same length")
    if not songs:
        raise ParameterError("cannot vote without blocks, got 0")
    if not np.isfinite(scores).all():
        bad = float(scores[~np.isfinite(scores)][0])
        raise ParameterError(f"block scores must be finite, got {bad!r}")

    # The rule itself is singerid.decision.song_vote (shared with `singerid query`); labels are
    # indexes into the sorted names, so its last tie break (lower index) is the first name.
    names = sorted(set(preds))
    code = {name: i for i, name in enumerate(names)}
    labels = np.array([code[p] for p in preds], dtype=np.int64)
    rows_of: dict[str, list[int]] = {}
    for i, song in enumerate(songs):
        rows_of.setdefault(song, []).append(i)
    out: dict[str, str] = {}
    for song, rows in rows_of.items():
        label, _ = song_vote(labels[rows], scores[rows], n_classes=len(names))
        out[song] = names[label]
    return out


def vote_predictions(block_song_ids: Sequence[str], blocks: Predictions,
                     block_scores: Sequence[float] | None = None) -> Predictions:
    """Song-level predictions from block-level ones, by ``vote_songs``.

    ``block_song_ids`` str (n,) names the song of each row of ``blocks``. The true singer of
    a song is the (single) true singer of its blocks. Songs come in order of first appearance.
    Raises: ParameterError when a song's blocks disagree about its true singer.
    """
    song_ids = list(block_song_ids)
    winners = vote_songs(song_ids, blocks.y_pred.tolist(), block_scores)
    truth: dict[str, str] = {}
    for song, singer in zip(song_ids, blocks.y_true.tolist()):
        if truth.setdefault(song, singer) != singer:
            raise ParameterError(f"song {song!r} has blocks labelled both {truth[song]!r} and {singer!r}")
    return Predictions(y_true=np.array([truth[s] for s in winners], dtype=object),
                       y_pred=np.array(list(winners.values()), dtype=object))
