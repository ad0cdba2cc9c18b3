"""One (dataset, seed) of ``evaluate``: models, test blocks, every method, counts and timings.

Order of work, each stage timed: ``train <kind>`` (or reuse: then the stage carries the
original training time from model.json, marked reused) per model; ``test features`` (test
songs into the feature cache); ``classify`` (one forward pass per model over the test blocks,
embeddings and logits together); per KNN method ``embed train <kind>`` (reference blocks of
the train split into the run home), ``index <kind>``, ``search <kind>`` (one search at the
largest K); ``baseline mfcc-logreg``. With progress on, each stage and each method evaluated
says so in one line (``singerid.progress``), so a piped run is never silent.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from singerid.datasets import Dataset
from singerid.embedder import checkpoint as ckpt
from singerid.datasets.synth_stems import stem_paths
from singerid.embedder.cache import FeatureCache
from singerid.embedder.embed import Embedder
from singerid.embedder.recipes import RECIPES
from singerid.evaluation import K_VALUES, KNN_METHODS, RunResult, SplitCount, StageTiming
from singerid.index.home import Home
from singerid.pipeline.build_index import build_index
from singerid.pipeline.embed_corpus import embed_tracks
from singerid.errors import SingeridError
from singerid.frontend import FrontEndConfig
from singerid.pipeline.evaluate_config import FEATURES_DIR, METHOD_RECIPE, EvaluateConfig
from singerid.pipeline.evaluate_ge2e import ge2e_run
from singerid.pipeline.evaluate_methods import (EvalBlocks, ModelOutput, collect_test_blocks, forward_pass, knn_run,
                                                softmax_run)
from singerid.pipeline.evaluate_mfcc import mfcc_run
from singerid.pipeline.evaluate_models import ModelOutcome, ensure_model
from singerid.pipeline.query import QueryEngine
from singerid.progress import Progress, ProgressArg, format_seconds, resolve_mode
from singerid.records import Track

log = logging.getLogger(__name__)



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
    timbre_songs: int | None = None  # test songs the timbre blocks come from


@dataclass(slots=True)
class _Stage:
    """What a stage's body tells its timer: words for its line, or the reused model it found."""

    extra: list[str] = field(default_factory=list)
    reused: ModelOutcome | None = None


class _Timer:
    """Collects the wall time of named stages of one seed, saying each one (and each method
    evaluated) on ``self.lines`` when progress is on."""

    def __init__(self, seed: int, label: str, progress: ProgressArg) -> None:
        self.seed = seed
        self.timings: list[StageTiming] = []
        # one line per stage: "lines" even on a terminal (the stages' own bars show the detail)
        self.lines = Progress(label, unit="method", progress="off" if resolve_mode(progress) == "off" else "lines")

    @contextmanager
    def stage(self, name: str) -> Iterator[_Stage]:
        """Time the ``with`` body and say so in one line (with what the body put in ``extra``).

        A body that sets ``reused`` (a model an earlier run trained) records that run's training
        time from model.json instead, marked reused.
        """
        started = time.perf_counter()
        stage = _Stage()
        yield stage
        seconds = time.perf_counter() - started
        if stage.reused is not None:
            seconds = stage.reused.train_seconds or 0.0
            where = "copied from --reuse-home" if stage.reused.source == "copied" else "found in OUT"
            self.timings.append(StageTiming(name, seconds, self.seed, reused=True))
            self.lines.note(f"{name}: reused ({where}; trained in {format_seconds(seconds)} by an earlier run)")
            return
        self.timings.append(StageTiming(name, seconds, self.seed))
        log.info("seed %d: %s took %.1f s", self.seed, name, seconds)
        self.lines.note(f"{name} in {format_seconds(seconds)}" + "".join(f"; {e}" for e in stage.extra))

    def evaluated(self, run: RunResult) -> None:
        """One line per method with its headline numbers."""
        song = float(np.mean(run.song.y_true == run.song.y_pred))
        block = "" if run.block is None else (f", block accuracy {np.mean(run.block.y_true == run.block.y_pred):.2f} "
                                              f"({run.block.n_items:,} blocks)")
        self.lines.update()
        self.lines.note(f"{run.method} evaluated: song accuracy {song:.2f} ({run.song.n_items:,} songs){block}")


def evaluate_seed(ds: Dataset, seed: int, *, cfg: EvaluateConfig, singers: tuple[str, ...], run_dir: Path,
                  cache_dir: Path, progress: ProgressArg = False, label: str = "") -> SeedOutcome:
    """Train or reuse the embedders, then run every method of ``cfg`` on ``ds``.

    ``run_dir``: OUT/runs/<dataset>/seed-<seed>; one home per trained recipe under it.
    ``singers``: the dataset's full singer list (the labels of every prediction).
    ``progress``: a ``singerid.progress`` mode; ``label`` starts each stage line ("synthetic seed 0").
    Raises SingeridError subclasses (and what torch / FAISS raise) on failure.
    """
    timer = _Timer(seed, f"evaluate {label or f'seed {seed}'}", progress)
    with timer.lines:  # its closing line: "evaluate synthetic seed 0: 10 methods in 1m02s"
        return _evaluate_seed(ds, seed, cfg=cfg, singers=singers, run_dir=run_dir, cache_dir=cache_dir,
                              progress=progress, timer=timer)


def _evaluate_seed(ds: Dataset, seed: int, *, cfg: EvaluateConfig, singers: tuple[str, ...], run_dir: Path,
                   cache_dir: Path, progress: ProgressArg, timer: _Timer) -> SeedOutcome:
    features_dir = Path(cache_dir) / FEATURES_DIR
    recipes = {r.name: r for r in cfg.recipes}
    homes = {name: Home(Path(run_dir) / name) for name in recipes}
    models = []
    for name, recipe in recipes.items():
        with timer.stage(f"train {name}") as stage:
            model = ensure_model(recipe, ds.tracks, home=homes[name], feature_cfg=cfg.feature, train_cfg=cfg.train,
                                 cache_dir=features_dir, precision=cfg.precision, reuse_home=cfg.reuse_home,
                                 progress=progress, device=cfg.device)
            stage.reused = model if model.source != "trained" else None
        models.append(model)
    runs: list[RunResult] = []
    timbre: tuple[np.ndarray | None, np.ndarray | None, str, int | None] = (None, None, "attcrnn", None)
    tests: dict[str, EvalBlocks] = {}  # per front end (FrontEndConfig.key): the test blocks
    if recipes:
        embedders = {name: Embedder.load(home.model_dir(recipes[name].kind), device=cfg.device)
                     for name, home in homes.items()}
        with timer.stage("test features") as stage:
            for name, embedder in embedders.items():
                _test_blocks(tests, ds, embedder.front_end_config, singers=singers, features_dir=features_dir,
                             cfg=cfg)
            stage.extra += [f"{t.n_blocks:,} blocks of {len(t.tracks):,} test songs ({key})" for key, t in tests.items()]
        outputs: dict[str, ModelOutput] = {}
        with timer.stage("classify"):
            for name, embedder in embedders.items():
                outputs.update(forward_pass({name: embedder}, tests[embedder.front_end_config.key], cfg=cfg.feature,
                                            batch_size=cfg.batch_size, progress=progress))
        timbre_name = next((n for n in ("attcrnn", "crnn", "voice") if n in outputs), next(iter(outputs)))
        timbre_test = tests[embedders[timbre_name].front_end_config.key]
        timbre = (outputs[timbre_name].embeddings, timbre_test.block_label, timbre_name, len(timbre_test.tracks))
        for method in cfg.methods:
            name = METHOD_RECIPE[method]
            if name is None:
                continue
            recipe = RECIPES[name]
            model = recipe.model_name
            test = tests[embedders[model].front_end_config.key]
            embeddings = outputs[model].embeddings
            if method == "voice-knn-clean":
                clean = _clean_voice_blocks(ds, singers=singers, features_dir=features_dir, cfg=cfg)
                if clean is None:
                    log.info("seed %d: voice-knn-clean skipped: the dataset has no voice stems", seed)
                    continue
                with timer.stage("classify clean voice stems"):
                    test, embeddings = clean, forward_pass({model: embedders[model]}, clean, cfg=cfg.feature,
                                                           batch_size=cfg.batch_size)[model].embeddings
            if method in KNN_METHODS:
                labels, sims, index_singers = _search(ds, homes[model], embedders[model], embeddings, cfg=cfg,
                                                      backend=recipe.backend, features_dir=features_dir, timer=timer,
                                                      progress=progress)
                runs.append(knn_run(method, seed, labels, sims, index_singers=index_singers, singers=singers,
                                    test=test, k=cfg.k, k_values=K_VALUES))
            else:
                runs.append(softmax_run(method, seed, outputs[model].logits, model_singers=embedders[model].singers,
                                        singers=singers, test=test))
            timer.evaluated(runs[-1])
    if "ge2e-knn" in cfg.methods:
        with timer.stage("ge2e-knn"):
            runs.append(ge2e_run(seed, ds, singers=singers, cache_dir=Path(cache_dir), cfg=cfg, progress=progress))
        timer.evaluated(runs[-1])
    if "mfcc-logreg" in cfg.methods:
        with timer.stage("baseline mfcc-logreg"):
            runs.append(mfcc_run(seed, ds.select("train"), ds.select("test"), cache_dir=cache_dir,
                                 sample_rate=cfg.feature.sample_rate, workers=cfg.workers, progress=progress))
        timer.evaluated(runs[-1])
    clean = _clean_voice_tracks(ds) if "mfcc-logreg-clean" in cfg.methods else None
    if clean is not None:
        with timer.stage("baseline mfcc-logreg-clean"):
            runs.append(mfcc_run(seed, [t for t in clean if t.split == "train"], [t for t in clean if t.split == "test"],
                                 cache_dir=cache_dir, sample_rate=cfg.feature.sample_rate, workers=cfg.workers,
                                 progress=progress, method="mfcc-logreg-clean"))
        timer.evaluated(runs[-1])
    elif "mfcc-logreg-clean" in cfg.methods:
        log.info("seed %d: mfcc-logreg-clean skipped: the dataset has no voice stems", seed)
    first = next(iter(recipes.values()), None)
    counts = _counts(ds, seed, tests.get(first.front_end().key) if first else None,
                     homes[first.name] if first else None, first.kind if first else None)
    return SeedOutcome(runs=tuple(runs), counts=counts, timings=tuple(timer.timings), models=tuple(models),
                       timbre_embeddings=timbre[0], timbre_labels=timbre[1], timbre_method=timbre[2],
                       timbre_songs=timbre[3])


def _test_blocks(tests: dict[str, EvalBlocks], ds: Dataset, front_end: FrontEndConfig, *,
                 singers: tuple[str, ...], features_dir: Path, cfg: EvaluateConfig) -> None:
    """Fill ``tests[front_end.key]`` with the test blocks as that front end prepares them (once)."""
    if front_end.key not in tests:
        cache = FeatureCache.for_input(features_dir, cfg.feature, front_end)
        tests[front_end.key] = collect_test_blocks(ds.select("test"), singers=singers, cache=cache)


def _clean_voice_tracks(ds: Dataset) -> list[Track] | None:
    """Every track with its path replaced by its true voice stem (synth-corpus --stems), or None."""
    voiced = []
    for t in ds.tracks:
        try:
            vocals, _ = stem_paths(ds.root, Path(t.path).resolve().relative_to(Path(ds.root).resolve()))
        except (ValueError, SingeridError):
            return None
        if not vocals.is_file():
            return None
        voiced.append(dataclasses.replace(t, path=vocals))
    return voiced


def _clean_voice_blocks(ds: Dataset, *, singers: tuple[str, ...], features_dir: Path,
                        cfg: EvaluateConfig) -> EvalBlocks | None:
    """Test blocks of the songs' true voice stems (synthetic corpora with --stems), or None."""
    voiced = _clean_voice_tracks(ds)
    if voiced is None:
        return None
    return collect_test_blocks([t for t in voiced if t.split == "test"], singers=singers,
                               cache=FeatureCache(features_dir, cfg.feature))


def _search(ds: Dataset, home: Home, embedder: Embedder, embeddings: np.ndarray, *, cfg: EvaluateConfig,
            backend: str, features_dir: Path, timer: _Timer, progress: ProgressArg
            ) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Reference blocks of the train split into ``home``, its index (with ``backend``), one search at cfg.search_k.

    The reference blocks come from the feature cache training filled (no song is separated twice).
    """
    name = home.root.name
    with timer.stage(f"embed train {name}"):
        cache = FeatureCache.for_input(features_dir, cfg.feature, embedder.front_end_config)
        summary = embed_tracks(home, ds.select("train"), model_kind=embedder.model_config.kind, embedder=embedder,
                               batch_size=cfg.batch_size, progress=progress, features=cache,
                               label=f"embed train {name}")  # its own line says songs and blocks
        log.info("%s: %s", home.root, summary.line())
    with timer.stage(f"index {name} ({backend})"):
        built = build_index(home, cfg=dataclasses.replace(cfg.index, backend=backend), splits=("train",),
                            progress=progress)
        log.info("%s: %s", home.root, built.line())
    with timer.stage(f"search {name}"):
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
