"""From predictions to numbers: every metric of every method of a dataset, over its seeds.

``summarise(results)`` is the single place where metrics are computed; report.json,
report.md, report.html and the terminal summary are all written from its output, so they
always agree.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from singerid.evaluation.metrics import (Aggregate, aggregate, confusion, level_metrics,
                                         singer_metrics)
from singerid.evaluation.results import ABLATION_METHODS, DatasetResult, EvaluationResults, Predictions

log = logging.getLogger(__name__)

METRICS: tuple[str, ...] = ("accuracy", "precision", "recall", "f1")  # Table-1 column groups
ABLATION_REFERENCE = "voice-knn"  # the full configuration every ablation row is compared with
# The lever each ablation method flips: a key of singerid.embedder.recipes.Recipe.levers().
ABLATION_LEVERS: dict[str, str] = {
    "voice-no-separation-knn": "input",
    "voice-no-remix-knn": "remix",
    "voice-no-gain-tilt-knn": "gain_tilt",
    "voice-softmax-head-knn": "head",
    "voice-no-backend-knn": "backend",
    "voice-with-adversary-knn": "album_adversary",
}
assert set(ABLATION_LEVERS) == set(ABLATION_METHODS), "every ablation method needs its lever"


@dataclass(frozen=True, slots=True)
class LevelSummary:
    """The four Table-1 metrics of one level over seeds, and the test items per seed."""

    accuracy: Aggregate
    precision: Aggregate
    recall: Aggregate
    f1: Aggregate
    n_items: tuple[tuple[int, int], ...]  # (seed, test blocks or songs)

    def metric(self, name: str) -> Aggregate:
        return getattr(self, name)


@dataclass(frozen=True, slots=True)
class SingerSummary:
    """One singer's precision / recall / F1 over seeds; ``support`` summed over seeds."""

    singer: str
    precision: Aggregate
    recall: Aggregate
    f1: Aggregate
    support: int


@dataclass(frozen=True, slots=True)
class KSummary:
    """Accuracy of a KNN method at one K, over the seeds that reported it."""

    k: int
    song: Aggregate
    block: Aggregate


@dataclass(frozen=True, slots=True, eq=False)
class MethodSummary:
    """All numbers of one method on one dataset. Block fields are None for song-only methods.

    Confusion matrices are int64 (n_singers, n_singers), rows true, columns predicted,
    summed over seeds.
    """

    method: str
    seeds: tuple[int, ...]  # seeds this method completed
    song: LevelSummary
    block: LevelSummary | None
    singers_song: tuple[SingerSummary, ...]
    singers_block: tuple[SingerSummary, ...] | None
    confusion_song: np.ndarray
    confusion_block: np.ndarray | None
    accuracy_vs_k: tuple[KSummary, ...]


@dataclass(frozen=True, slots=True, eq=False)
class DatasetSummary:
    """A dataset's input record and the summary of each of its methods, in report order."""

    result: DatasetResult
    methods: tuple[MethodSummary, ...]

    @property
    def key(self) -> str:
        return self.result.key

    def method(self, name: str) -> MethodSummary | None:
        return next((m for m in self.methods if m.method == name), None)


@dataclass(frozen=True, slots=True)
class AblationRow:
    """One row of the ablation table: the full configuration, or it with one lever flipped.

    ``lever`` is None for the full configuration (``ABLATION_REFERENCE``). The aggregates are
    None when the method did not run. ``delta_song_accuracy``: song accuracy minus that of the
    full configuration, mean over the seeds both completed (paired), in [-1, 1]; None for the
    full configuration itself and when the two share no seed.
    """

    method: str
    lever: str | None
    song_accuracy: Aggregate | None
    song_f1: Aggregate | None
    block_accuracy: Aggregate | None
    delta_song_accuracy: float | None


def ablation_rows(s: DatasetSummary) -> tuple[AblationRow, ...]:
    """The full configuration, then each ablation method that ran on ``s``; () when none ran."""
    ran = [m for m in (s.method(name) for name in ABLATION_METHODS) if m is not None]
    if not ran:
        return ()
    full = s.method(ABLATION_REFERENCE)
    rows = [_ablation_row(ABLATION_REFERENCE, None, full, None)]
    rows += [_ablation_row(m.method, ABLATION_LEVERS[m.method], m, full) for m in ran]
    return tuple(rows)


def _ablation_row(method: str, lever: str | None, m: MethodSummary | None,
                  full: MethodSummary | None) -> AblationRow:
    delta = None
    if m is not None and full is not None and lever is not None:
        reference = dict(full.song.accuracy.per_seed)
        diffs = [value - reference[seed] for seed, value in m.song.accuracy.per_seed if seed in reference]
        delta = float(np.mean(diffs)) if diffs else None
    return AblationRow(method=method, lever=lever,
                       song_accuracy=None if m is None else m.song.accuracy,
                       song_f1=None if m is None else m.song.f1,
                       block_accuracy=None if m is None or m.block is None else m.block.accuracy,
                       delta_song_accuracy=delta)


def summarise(results: EvaluationResults) -> tuple[DatasetSummary, ...]:
    """Summaries of every dataset of ``results``, in the given order."""
    return tuple(summarise_dataset(ds) for ds in results.datasets)


def summarise_dataset(ds: DatasetResult) -> DatasetSummary:
    """Metrics of every method of ``ds`` with mean, std and per-seed values."""
    methods = []
    for method in ds.methods:
        runs = ds.runs_of(method)
        has_blocks = runs[0].block is not None
        methods.append(MethodSummary(
            method=method,
            seeds=tuple(r.seed for r in runs),
            song=_level([(r.seed, r.song) for r in runs], ds.singers),
            block=_level([(r.seed, r.block) for r in runs], ds.singers) if has_blocks else None,
            singers_song=_singers([(r.seed, r.song) for r in runs], ds.singers),
            singers_block=_singers([(r.seed, r.block) for r in runs], ds.singers) if has_blocks else None,
            confusion_song=sum(confusion(r.song, ds.singers) for r in runs),
            confusion_block=sum(confusion(r.block, ds.singers) for r in runs) if has_blocks else None,
            accuracy_vs_k=_accuracy_vs_k(runs),
        ))
        log.debug("%s/%s: %d seed(s) summarised", ds.key, method, len(runs))
    return DatasetSummary(result=ds, methods=tuple(methods))


def _level(pairs: list[tuple[int, Predictions]], singers: tuple[str, ...]) -> LevelSummary:
    per_seed = [(seed, level_metrics(pred, singers)) for seed, pred in pairs]
    return LevelSummary(
        **{name: aggregate([(seed, getattr(m, name)) for seed, m in per_seed]) for name in METRICS},
        n_items=tuple((seed, pred.n_items) for seed, pred in pairs),
    )


def _singers(pairs: list[tuple[int, Predictions]], singers: tuple[str, ...]) -> tuple[SingerSummary, ...]:
    per_seed = [(seed, singer_metrics(pred, singers)) for seed, pred in pairs]
    out = []
    for i, name in enumerate(singers):
        out.append(SingerSummary(
            singer=name,
            precision=aggregate([(seed, rows[i].precision) for seed, rows in per_seed]),
            recall=aggregate([(seed, rows[i].recall) for seed, rows in per_seed]),
            f1=aggregate([(seed, rows[i].f1) for seed, rows in per_seed]),
            support=sum(rows[i].support for _, rows in per_seed),
        ))
    return tuple(out)


def _accuracy_vs_k(runs) -> tuple[KSummary, ...]:
    ks = sorted({p.k for r in runs for p in r.accuracy_vs_k})
    out = []
    for k in ks:
        points = [(r.seed, p) for r in runs for p in r.accuracy_vs_k if p.k == k]
        out.append(KSummary(k=k, song=aggregate([(s, p.song_accuracy) for s, p in points]),
                            block=aggregate([(s, p.block_accuracy) for s, p in points])))
    return tuple(out)
