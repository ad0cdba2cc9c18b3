"""Classification metrics of one level (blocks or songs), and their aggregation over seeds.

Paper §3.2: accuracy, precision, recall and F1. We compute them with scikit-learn:
- precision, recall and F1 are **macro** averages over the **full singer list** (every
  singer of the dataset counts once, whether or not it occurs in the test split), with
  ``zero_division=0`` (a singer never predicted has precision 0, one never present recall 0);
- macro F1 is the mean of the per-singer F1 values (scikit-learn's definition), not the
  harmonic mean of macro precision and macro recall;
- the confusion matrix (scikit-learn's) has rows = true singer, columns = predicted singer, in
  singer-list order;
- the equal error rate (``build-index``'s unknown-singer threshold) comes from scikit-learn's ROC curve.
Over seeds we report the mean and the **population** standard deviation (numpy ``ddof=0``):
it is defined for a single seed (0.0) and is what the CRNN baseline's repeats report.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from singerid.errors import ParameterError
from singerid.evaluation.results import Predictions

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LevelMetrics:
    """Accuracy and macro precision / recall / F1 of one level, one seed. All in [0, 1]."""

    accuracy: float
    precision: float
    recall: float
    f1: float


@dataclass(frozen=True, slots=True)
class SingerMetrics:
    """Precision / recall / F1 (in [0, 1]) of one singer; ``support`` = its true items."""

    singer: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True, slots=True)
class Aggregate:
    """A metric over seeds: mean, population std (ddof=0) and the value of each seed."""

    mean: float
    std: float
    per_seed: tuple[tuple[int, float], ...]  # (seed, value), in the order given

    @property
    def n_seeds(self) -> int:
        return len(self.per_seed)


def encode(pred: Predictions, labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes of ``y_true`` and ``y_pred`` (int64 (n,), index into ``labels``).

    Raises: ParameterError when a label is not in ``labels`` or ``labels`` has duplicates.
    """
    index = {name: i for i, name in enumerate(labels)}
    if len(index) != len(labels) or not labels:
        raise ParameterError(f"singer list must be non-empty and without duplicates, got {len(labels)} names")
    try:
        y_true = np.fromiter((index[v] for v in pred.y_true.tolist()), dtype=np.int64, count=pred.n_items)
        y_pred = np.fromiter((index[v] for v in pred.y_pred.tolist()), dtype=np.int64, count=pred.n_items)
    except KeyError as exc:
        raise ParameterError(f"label {exc.args[0]!r} is not in the singer list") from None
    return y_true, y_pred


def level_metrics(pred: Predictions, labels: Sequence[str]) -> LevelMetrics:
    """Accuracy and macro precision / recall / F1 of ``pred`` over the singer list ``labels``."""
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    y_true, y_pred = encode(pred, labels)
    p, r, f, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=np.arange(len(labels)), average="macro", zero_division=0)
    return LevelMetrics(accuracy=float(accuracy_score(y_true, y_pred)),
                        precision=float(p), recall=float(r), f1=float(f))


def singer_metrics(pred: Predictions, labels: Sequence[str]) -> tuple[SingerMetrics, ...]:
    """Per-singer precision / recall / F1 and support, one record per singer of ``labels``."""
    from sklearn.metrics import precision_recall_fscore_support

    y_true, y_pred = encode(pred, labels)
    p, r, f, s = precision_recall_fscore_support(
        y_true, y_pred, labels=np.arange(len(labels)), average=None, zero_division=0)
    return tuple(SingerMetrics(singer=name, precision=float(p[i]), recall=float(r[i]),
                               f1=float(f[i]), support=int(s[i])) for i, name in enumerate(labels))


def confusion(pred: Predictions, labels: Sequence[str]) -> np.ndarray:
    """Confusion counts, int64 (n_singers, n_singers): [i, j] = items of singer i predicted j."""
    from sklearn.metrics import confusion_matrix

    y_true, y_pred = encode(pred, labels)
    return confusion_matrix(y_true, y_pred, labels=np.arange(len(labels))).astype(np.int64)


def equal_error_threshold(genuine: np.ndarray, impostor: np.ndarray) -> tuple[float, float]:
    """The equal error rate of accepting a score >= t, and its threshold t (scikit-learn's ROC).

    ``genuine``: float (n,) scores that should be accepted (n >= 1); ``impostor``: float (m,)
    scores that should be rejected (m >= 1). Every distinct score is a candidate threshold; the
    one where false rejects (genuine < t) and false accepts (impostor >= t) are closest wins,
    ties to the lower total error, then to the lower threshold.
    Returns (t, error rate at t as the mean of the two rates, in [0, 1]).
    Raises ParameterError when either side is empty or a score is not finite.
    """
    from sklearn.metrics import roc_curve

    genuine, impostor = np.asarray(genuine, dtype=np.float64), np.asarray(impostor, dtype=np.float64)
    if genuine.size == 0 or impostor.size == 0:
        raise ParameterError(f"EER needs genuine and impostor scores, got {genuine.size} and {impostor.size}")
    scores = np.concatenate([genuine, impostor])
    if not np.isfinite(scores).all():
        raise ParameterError("EER scores must be finite")
    truth = np.concatenate([np.ones(genuine.size), np.zeros(impostor.size)])
    far, tpr, thresholds = roc_curve(truth, scores, drop_intermediate=False)
    far, frr, thresholds = far[1:][::-1], 1.0 - tpr[1:][::-1], thresholds[1:][::-1]  # drop +inf; ascending t
    best = int(np.argmin(np.abs(frr - far) + 1e-9 * (frr + far)))
    return float(thresholds[best]), float((frr[best] + far[best]) / 2)


def aggregate(per_seed: Mapping[int, float] | Sequence[tuple[int, float]]) -> Aggregate:
    """Mean and population std (ddof=0) of one metric over seeds.

    ``per_seed``: {seed: value} or (seed, value) pairs, at least one, values finite.
    Raises: ParameterError when empty or a value is not finite.
    """
    pairs = tuple((int(s), float(v)) for s, v in (per_seed.items() if isinstance(per_seed, Mapping) else per_seed))
    if not pairs:
        raise ParameterError("cannot aggregate a metric over 0 seeds")
    values = np.array([v for _, v in pairs], dtype=np.float64)
    if not np.isfinite(values).all():
        raise ParameterError(f"metric values must be finite, got {values.tolist()}")
    return Aggregate(mean=float(values.mean()), std=float(values.std(ddof=0)), per_seed=pairs)
