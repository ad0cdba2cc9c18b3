"""Metrics against scikit-learn and hand-computed values; aggregation over seeds; song votes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

from singerid.errors import ParameterError
from singerid.evaluation import (Predictions, aggregate, confusion, level_metrics, singer_metrics,
                                 vote_predictions, vote_songs)

LABELS = ("a", "b", "c", "d")  # "d" is in the singer list but never in the test split
Y_TRUE = ["a", "a", "a", "b", "b", "c"]
Y_PRED = ["a", "a", "b", "b", "c", "c"]


def test_level_metrics_match_hand_computed_values():
    # a: P 1, R 2/3, F1 0.8; b: P 1/2, R 1/2, F1 1/2; c: P 1/2, R 1, F1 2/3; d: 0, 0, 0
    m = level_metrics(Predictions(Y_TRUE, Y_PRED), LABELS)
    assert m.accuracy == pytest.approx(4 / 6)
    assert m.precision == pytest.approx((1 + 0.5 + 0.5 + 0) / 4)
    assert m.recall == pytest.approx((2 / 3 + 0.5 + 1 + 0) / 4)
    assert m.f1 == pytest.approx((0.8 + 0.5 + 2 / 3 + 0) / 4)


def test_level_metrics_match_scikit_learn_over_the_full_singer_list():
    rng = np.random.default_rng(7)
    labels = tuple(f"s{i}" for i in range(9))
    y_true = rng.choice(labels[:7], size=200)  # two singers absent from the test split
    y_pred = np.where(rng.random(200) < 0.6, y_true, rng.choice(labels, size=200))
    m = level_metrics(Predictions(y_true, y_pred), labels)
    p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, labels=list(labels), average="macro",
                                                 zero_division=0)
    assert (m.accuracy, m.precision, m.recall, m.f1) == pytest.approx(
        (accuracy_score(y_true, y_pred), p, r, f), abs=1e-12)
    per = singer_metrics(Predictions(y_true, y_pred), labels)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=list(labels), average=None, zero_division=0)
    assert [x.singer for x in per] == list(labels)
    assert [x.f1 for x in per] == pytest.approx(f.tolist())
    assert [x.precision for x in per] == pytest.approx(p.tolist())
    assert [x.recall for x in per] == pytest.approx(r.tolist())
    assert [x.support for x in per] == s.tolist()
    assert per[7].support == 0 and per[7].recall == 0.0  # absent singer: zero_division=0


def test_macro_average_counts_singers_missing_from_the_test_split():
    with_d = level_metrics(Predictions(Y_TRUE, Y_PRED), LABELS).f1
    without_d = level_metrics(Predictions(Y_TRUE, Y_PRED), LABELS[:3]).f1
    assert without_d == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert with_d == pytest.approx(without_d * 3 / 4)


def test_confusion_rows_are_true_singers_and_match_scikit_learn():
    matrix = confusion(Predictions(Y_TRUE, Y_PRED), LABELS)
    assert matrix.dtype == np.int64 and matrix.shape == (4, 4)
    assert matrix.tolist() == confusion_matrix(Y_TRUE, Y_PRED, labels=list(LABELS)).tolist()
    assert matrix[0].tolist() == [2, 1, 0, 0]  # two "a" right, one "a" called "b"


def test_a_label_outside_the_singer_list_is_refused():
    with pytest.raises(ParameterError, match=r"label 'zed' is not in the singer list"):
        level_metrics(Predictions(["a", "b"], ["a", "zed"]), LABELS)


def test_predictions_check_their_shape():
    with pytest.raises(ParameterError, match=r"y_true has 2 items but y_pred has 1"):
        Predictions(["a", "b"], ["a"])
    with pytest.raises(ParameterError, match=r"at least one item, got 0"):
        Predictions([], [])
    with pytest.raises(ParameterError, match=r"non-empty singer names, got 3"):
        Predictions(["a", 3], ["a", "b"])


def test_aggregate_is_mean_and_population_std_over_seeds():
    agg = aggregate({0: 0.5, 21: 0.7, 42: 0.9})
    assert agg.mean == pytest.approx(0.7)
    assert agg.std == pytest.approx(math.sqrt((0.2**2 + 0 + 0.2**2) / 3))  # ddof = 0
    assert agg.per_seed == ((0, 0.5), (21, 0.7), (42, 0.9))
    single = aggregate([(3, 0.25)])
    assert (single.mean, single.std, single.n_seeds) == (0.25, 0.0, 1)


def test_aggregate_refuses_nothing_and_nan():
    with pytest.raises(ParameterError, match="0 seeds"):
        aggregate({})
    with pytest.raises(ParameterError, match=r"finite, got \[0.5, nan\]"):
        aggregate({0: 0.5, 1: float("nan")})


def test_vote_songs_majority_then_score_then_name():
    songs = ["s1", "s1", "s1", "s2", "s2", "s2", "s3", "s3", "s3", "s3", "s4", "s4"]
    preds = ["a", "b", "a", "a", "b", "b", "a", "b", "a", "b", "b", "a"]
    scores = [0.1, 0.9, 0.1, 0.9, 0.2, 0.2, 0.6, 0.9, 0.5, 0.1, 0.5, 0.5]
    out = vote_songs(songs, preds, scores)
    assert out == {"s1": "a",  # 2 votes beat 1, whatever the score
                   "s2": "b",  # 2 votes beat 1 with a higher score
                   "s3": "a",  # 2-2: summed score 1.1 beats 1.0
                   "s4": "a"}  # 1-1, equal score: the name that sorts first
    assert list(out) == ["s1", "s2", "s3", "s4"]
    reverse = vote_songs(songs[::-1], preds[::-1], scores[::-1])
    assert reverse == out  # independent of block order
    assert vote_songs(["x", "x"], ["zed", "abe"]) == {"x": "abe"}  # no scores: name decides


def test_vote_songs_checks_its_inputs():
    with pytest.raises(ParameterError, match=r"block_song_ids \(2\), block_preds \(1\)"):
        vote_songs(["s", "s"], ["a"], [1.0, 1.0])
    with pytest.raises(ParameterError, match="without blocks"):
        vote_songs([], [], [])
    with pytest.raises(ParameterError, match="finite, got nan"):
        vote_songs(["s"], ["a"], [float("nan")])


def test_vote_predictions_builds_song_level_truth_and_votes():
    blocks = Predictions(["a", "a", "a", "b", "b"], ["a", "b", "a", "c", "b"])
    songs = vote_predictions(["s1", "s1", "s1", "s2", "s2"], blocks, [0.5, 0.5, 0.5, 0.9, 0.4])
    assert songs.y_true.tolist() == ["a", "b"]
    assert songs.y_pred.tolist() == ["a", "c"]  # s2: 1-1, "c" has the larger score
    with pytest.raises(ParameterError, match=r"song 's1' has blocks labelled both 'a' and 'b'"):
        vote_predictions(["s1", "s1"], Predictions(["a", "b"], ["a", "a"]))


# --- equal error rate (scikit-learn's ROC curve) ------------------------------------------------------

def _eer_by_hand(genuine: np.ndarray, impostor: np.ndarray) -> tuple[float, float]:
    """Every distinct score as threshold t (accept >= t); the t where the two error rates are closest."""
    best = None
    for t in sorted(set(genuine.tolist()) | set(impostor.tolist())):
        frr, far = float(np.mean(genuine < t)), float(np.mean(impostor >= t))
        key = (abs(frr - far) + 1e-9 * (frr + far), t)
        if best is None or key < best[0]:
            best = (key, t, (frr + far) / 2)
    return best[1], best[2]


def test_equal_error_threshold_matches_the_definition_with_ties():
    from singerid.evaluation.metrics import equal_error_threshold

    rng = np.random.default_rng(11)
    for _ in range(20):
        genuine = np.round(rng.normal(0.7, 0.1, size=rng.integers(2, 40)), 2)  # rounding makes ties
        impostor = np.round(rng.normal(0.5, 0.1, size=rng.integers(2, 40)), 2)
        threshold, eer = equal_error_threshold(genuine, impostor)
        expected = _eer_by_hand(genuine, impostor)
        assert threshold == pytest.approx(expected[0]) and eer == pytest.approx(expected[1])


def test_equal_error_threshold_refuses_empty_or_non_finite_scores():
    from singerid.evaluation.metrics import equal_error_threshold

    with pytest.raises(ParameterError, match=r"genuine and impostor scores, got 0 and 2"):
        equal_error_threshold(np.array([]), np.array([0.1, 0.2]))
    with pytest.raises(ParameterError, match="finite"):
        equal_error_threshold(np.array([0.5, np.nan]), np.array([0.1]))
