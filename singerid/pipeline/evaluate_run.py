"""One (dataset, seed) of ``evaluate``: models, test blocks, every method, counts and timings.

Order of work, each stage timed: ``train <kind>`` (or reuse) per model; ``test features``
(test songs into the feature cache); ``classify`` (one forward pass per model over the
test blocks, embeddings and logits together); per KNN method ``embed train <kind>``
(reference blocks of the train split into the run home), ``index <kind>``, ``search <kind>``
(one search at the largest K); ``baseline mfcc-logreg``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from singerid.datasets import Dataset
from singerid.embedder import checkpoint as ckpt
from singerid.embedder.cache import FeatureCache
from singerid.embedder.embed import Embedder
from singerid.evaluation import K_VALUES, KNN_METHODS, RunResult, SplitCount, StageTiming
from singerid.index.home import Home
from singerid.pipeline.build_index import build_index
from singerid.pipeline.embed_corpus import embed_tracks
from singerid.pipeline.evaluate_config import METHOD_MODEL, EvaluateConfig
from singerid.pipeline.evaluate_methods import EvalBlocks, collect_test_blocks, forward_pass, knn_run, softmax_run
from singerid.pipeline.evaluate_mfcc import mfcc_run
from singerid.pipeline.evaluate_models import ModelOutcome, ensure_model
from singerid.pipeline.query import QueryEngine

log = logging.getLogger(__name__)

FEATURES_DIR = "features"  # under OUT/cache: the log-mel cache


@dataclass(frozen=True, slots=True, eq=False)
class SeedOutcome:
    """Everything one seed of one dataset produced.

    timbre_embeddings: float32 (n_test_blocks, d) of the Attention-CRNN (else the CRNN), or
    None when no deep model ran; timbre_labels: int64 (n_test_blocks,) their singer labels.
    """

    runs: tuple[RunResult, ...]
    counts: tuple[SplitCount, ...]
    timings: tuple[StageTiming, ...]
    models: tuple[ModelOutcome, ...]
    timbre_embeddings: np.ndarray | None = None
    timbre_labels: np.ndarray | None = None
    timbre_method: str = "attcrnn"


class _Timer:
    """Collects the wall time of named stages of one seed."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.timings: list[StageTiming] = []

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        seconds = time.perf_counter() - started
        self.timings.append(StageTiming(name, seconds, self.seed))
        log.info("seed %d: %s took %.1f s", self.seed, name, seconds)


def evaluate_seed(ds: Dataset, seed: int, *, cfg: EvaluateConfig, singers: tuple[str, ...], run_dir: Path,
                  cache_dir: Path, progress: bool = False) -> SeedOutcome:
    """Train or reuse the models, then run every method of ``cfg`` on ``ds``.

    ``run_dir``: OUT/runs/<dataset>/seed-<seed>; one home per model kind under it.
    ``singers``: the dataset's full singer list (the labels of every prediction).
    Raises SingeridError subclasses (and what torch / FAISS raise) on failure.
    """
    timer = _Timer(seed)
    features_dir = Path(cache_dir) / FEATURES_DIR
    homes = {kind: Home(Path(run_dir) / kind) for kind in cfg.model_kinds}
    models = []
    for kind, home in homes.items():
        with timer.stage(f"train {kind}"):
            models.append(ensure_model(kind, ds.tracks, home=home, feature_cfg=cfg.feature, train_cfg=cfg.train,
                                       cache_dir=features_dir, precision=cfg.precision, reuse_home=cfg.reuse_home,
                                       progress=progress))
    runs: list[RunResult] = []
    timbre: tuple[np.ndarray | None, np.ndarray | None, str] = (None, None, "attcrnn")
    test: EvalBlocks | None = None
    if homes:
        with timer.stage("test features"):
            test = collect_test_blocks(ds.select("test"), singers=singers,
                                       cache=FeatureCache(features_dir, cfg.feature))
        embedders = {kind: Embedder.load(home.model_dir(kind)) for kind, home in homes.items()}
        with timer.stage("classify"):
            outputs = forward_pass(embedders, test, cfg=cfg.feature, batch_size=cfg.batch_size, progress=progress)
        timbre_kind = "attcrnn" if "attcrnn" in outputs else "crnn"
        timbre = (outputs[timbre_kind].embeddings, test.block_label, timbre_kind)
        for method in cfg.methods:
            kind = METHOD_MODEL[method]
            if kind is None:
                continue
            if method in KNN_METHODS:
                labels, sims, index_singers = _search(ds, homes[kind], embedders[kind], outputs[kind].embeddings,
                                                      cfg=cfg, timer=timer, progress=progress)
                runs.append(knn_run(method, seed, labels, sims, index_singers=index_singers, singers=singers,
                                    test=test, k=cfg.k, k_values=K_VALUES))
            else:
                runs.append(softmax_run(method, seed, outputs[kind].logits, model_singers=embedders[kind].singers,
                                        singers=singers, test=test))
    if "mfcc-logreg" in cfg.methods:
        with timer.stage("baseline mfcc-logreg"):
            runs.append(mfcc_run(seed, ds.select("train"), ds.select("test"), cache_dir=cache_dir,
                                 sample_rate=cfg.feature.sample_rate, workers=cfg.workers, progress=progress))
    counts = _counts(ds, seed, test, next(iter(homes.values()), None), next(iter(homes), None))
    return SeedOutcome(runs=tuple(runs), counts=counts, timings=tuple(timer.timings), models=tuple(models),
                       timbre_embeddings=timbre[0], timbre_labels=timbre[1], timbre_method=timbre[2])


def _search(ds: Dataset, home: Home, embedder: Embedder, embeddings: np.ndarray, *, cfg: EvaluateConfig,
            timer: _Timer, progress: bool) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Reference blocks of the train split into ``home``, its index, and one search at cfg.search_k."""
    kind = embedder.model_config.kind
    with timer.stage(f"embed train {kind}"):
        summary = embed_tracks(home, ds.select("train"), model_kind=kind, embedder=embedder,
                               batch_size=cfg.batch_size, progress=progress)
        log.info("%s: %s", home.root, summary.line())
    with timer.stage(f"index {kind}"):
        built = build_index(home, cfg=cfg.index, splits=("train",), progress=progress)
        log.info("%s: %s", home.root, built.line())
    with timer.stage(f"search {kind}"):
        with QueryEngine.open(home) as engine:
            labels, sims = engine.neighbour_labels(embeddings, cfg.search_k)
            return labels, sims, engine.singers


def _counts(ds: Dataset, seed: int, test: EvalBlocks | None, home: Home | None,
            kind: str | None) -> tuple[SplitCount, ...]:
    """Songs and blocks per split: train / val from the model's record, test as classified."""
    training = ckpt.read_card(home.model_dir(kind)).training if home is not None else {}
    out = []
    for split in ("train", "val"):
        songs = int(training.get(f"n_{split}_tracks", len(ds.select(split))))
        out.append(SplitCount(seed, split, songs, int(training.get(f"n_{split}_blocks", 0))))
    if test is None:
        out.append(SplitCount(seed, "test", len(ds.select("test")), 0))
    else:
        out.append(SplitCount(seed, "test", len(test.tracks), test.n_blocks))
    return tuple(out)
