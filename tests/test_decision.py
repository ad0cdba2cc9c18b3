"""The decision rule: K-NN block vote and song vote, including ties."""

from __future__ import annotations

import numpy as np
import pytest

from singerid.decision import MISSING, knn_block_votes, song_vote
from singerid.errors import ParameterError


def test_majority_of_k_neighbours_wins():
    labels = np.array([[0, 1, 1, 2, 1], [2, 2, 0, 0, 0]])
    sims = np.full(labels.shape, 0.5)
    votes = knn_block_votes(labels, sims, k=5, n_classes=3)
    assert votes.pred.tolist() == [1, 0]
    assert votes.votes.tolist() == [3, 3]
    np.testing.assert_allclose(votes.score, [1.5, 1.5])


def test_only_first_k_columns_vote():
    labels = np.array([[0, 0, 1, 1, 1, 1]])
    sims = np.linspace(0.9, 0.4, 6)[None, :]
    assert knn_block_votes(labels, sims, k=2, n_classes=2).pred.tolist() == [0]
    assert knn_block_votes(labels, sims, k=6, n_classes=2).pred.tolist() == [1]


def test_count_tie_goes_to_larger_summed_similarity_then_lower_label():
    labels = np.array([[1, 0, 1, 0], [0, 1, 1, 0]])
    sims = np.array([[0.9, 0.8, 0.7, 0.7], [0.5, 0.5, 0.5, 0.5]])
    votes = knn_block_votes(labels, sims, k=4, n_classes=2)
    assert votes.pred.tolist() == [1, 0]  # row 0: 1.6 > 1.5; row 1: equal -> lower label


def test_missing_neighbours_do_not_vote():
    labels = np.array([[2, MISSING, MISSING], [MISSING, MISSING, MISSING]])
    sims = np.array([[0.3, -1.0, -1.0], [-1.0, -1.0, -1.0]])
    votes = knn_block_votes(labels, sims, k=3, n_classes=3)
    assert votes.pred.tolist() == [2, MISSING]
    assert votes.votes.tolist() == [1, 0]


def test_song_vote_shares_and_ties():
    label, shares = song_vote(np.array([0, 1, 1, 0, 2]), np.array([3.0, 2.0, 2.0, 3.0, 1.0]), n_classes=3)
    assert label == 0  # 2 vs 2 votes, summed score 6 > 4
    np.testing.assert_allclose(shares, [0.4, 0.4, 0.2])
    label, _ = song_vote(np.array([MISSING, 2, 2, 1]), np.array([0.0, 1.0, 1.0, 1.0]), n_classes=3)
    assert label == 2


def test_song_vote_majority_beats_large_scores():
    # a KNN block score is a sum of up to K similarities, so it can exceed 1
    label, _ = song_vote(np.array([0, 0, 1]), np.array([1.0, 1.0, 11.0]), n_classes=2)
    assert label == 0


def test_bad_shapes_and_empty_votes_are_parameter_errors():
    with pytest.raises(ParameterError, match="k=5 needs neighbour arrays with at least k columns"):
        knn_block_votes(np.zeros((2, 3), int), np.zeros((2, 3)), k=5, n_classes=2)
    with pytest.raises(ParameterError, match="no block of this song"):
        song_vote(np.array([MISSING]), np.array([0.0]), n_classes=2)


def test_vote_matches_a_plain_python_count_on_random_data():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 7, size=(300, 11))
    sims = rng.uniform(-1, 1, size=(300, 11))
    votes = knn_block_votes(labels, sims, k=11, n_classes=7)
    for row, sim, pred in zip(labels, sims, votes.pred):
        counts = {c: int((row == c).sum()) for c in range(7)}
        totals = {c: float(sim[row == c].sum()) for c in range(7)}
        best = max(range(7), key=lambda c: (counts[c], totals[c], -c))
        assert pred == best
