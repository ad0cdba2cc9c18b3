"""``singerid evaluate``: the paper's Table 1 on one or more datasets, written as three reports."""

from __future__ import annotations

import os
from pathlib import Path

import click

from singerid.cli.common import json_option, show_progress
from singerid.config import IndexConfig, TrainConfig

TRAIN = TrainConfig()  # option defaults come from the dataclasses
INDEX = IndexConfig()
METHOD_NAMES = ("crnn", "attcrnn", "attcrnn-knn", "crnn-knn", "voice", "voice-knn", "ge2e-knn", "mfcc-logreg",
                "voice-knn-clean", "mfcc-logreg-clean")  # = singerid.evaluation.results.DEFAULT_METHODS
ABLATION_NAMES = ("voice-no-separation-knn", "voice-no-remix-knn", "voice-no-gain-tilt-knn", "voice-softmax-head-knn",
                  "voice-no-backend-knn", "voice-with-adversary-knn")  # = singerid.evaluation.results.ABLATION_METHODS
DEFAULT_SEEDS = "0,21,42"  # CRNN baseline's seeds (singerid.constants.BASELINE_SEEDS)
INDEX_CHOICES = ("flat", "auto", "flat-fp16", "ivf-pq", "hnsw")


def _methods(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
    names = tuple(v.strip() for v in value.split(","))
    bad = [n for n in names if n not in (*METHOD_NAMES, *ABLATION_NAMES)]
    if bad or not names:
        raise click.BadParameter(f"unknown method {bad[0] if bad else value!r}; choose from "
                                 f"{','.join((*METHOD_NAMES, *ABLATION_NAMES))}")
    if len(set(names)) != len(names):
        raise click.BadParameter(f"{value!r} names a method twice")
    return names


def _seeds(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma list of integers, e.g. 0,21,42") from None
    if any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise click.BadParameter(f"{value!r}: seeds must be distinct and >= 0")
    return seeds


def _datasets(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]):
    from singerid.errors import ParameterError
    from singerid.pipeline.evaluate_config import DatasetSpec

    try:
        specs = tuple(DatasetSpec.parse(v) for v in value)
    except ParameterError as exc:
        raise click.BadParameter(str(exc).removeprefix("--dataset ")) from None
    keys = [s.key for s in specs]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise click.BadParameter(f"dataset key {twice[0]!r} is given twice")
    return specs


@click.command()
@click.option("--dataset", "datasets", multiple=True, required=True, callback=_datasets, metavar="KEY=PATH",
              help="A dataset to evaluate (repeatable). KEY artist20 / singer32 / singer60 fills the paper's "
                   "A20 / S32 / S60 columns and picks that reader; any other KEY (e.g. synthetic) is reported "
                   "on its own and its layout detected.")
@click.option("--methods", default=",".join(METHOD_NAMES), show_default=True, callback=_methods,
              help="Comma list of report rows (*-clean rows run only where the corpus has voice stems).")
@click.option("--ablation", is_flag=True,
              help="Also train and report each lever of voice-knn flipped, one at a time (6 more models per seed).")
@click.option("--split", "split_mode", type=click.Choice(["album", "lists", "song"]), default="album",
              show_default=True, help="How songs are split (album = the paper's protocol; see `singerid scan`).")
@click.option("--seeds", default=DEFAULT_SEEDS, show_default=True, callback=_seeds,
              help="Comma list of seeds; each gives its own split and training run.")
@click.option("--k", type=click.IntRange(min=1), default=INDEX.k, show_default=True,
              help="Neighbours per block of the headline KNN numbers (accuracy vs K is always reported).")
@click.option("--index", "index_type", type=click.Choice(INDEX_CHOICES), default=INDEX.index_type,
              show_default=True, help="FAISS index of the reference blocks (flat = exact search).")
@click.option("--gpu", is_flag=True, help="Build the FAISS index on the GPU (faiss-gpu); training stays on the CPU.")
@click.option("--epochs", type=click.IntRange(min=1), default=TRAIN.epochs, show_default=True,
              help="Most training epochs per model (early stopping may end sooner).")
@click.option("--batch-size", type=click.IntRange(min=1), default=TRAIN.batch_size, show_default=True,
              help="Blocks per training batch.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=TRAIN.lr, show_default=True,
              help="Adam learning rate.")
@click.option("--patience", type=click.IntRange(min=1), default=TRAIN.patience, show_default=True,
              help="Stop after this many epochs without a better validation block accuracy.")
@click.option("--precision", type=click.Choice(["fp32", "bf16"]), default="fp32", show_default=True,
              help="bf16: bfloat16 autocast for training, about 2x faster on CPUs with AMX or AVX512-BF16.")
@click.option("--home", "reuse_home", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="A home whose trained models are reused when their settings and training data match.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Processes computing the baseline's MFCCs [default: all cores].")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="Torch CPU threads [default: all cores available].")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Directory of the reports, trained models, indexes and caches (reused when rerun).")
@json_option
def evaluate(datasets, methods: tuple[str, ...], ablation: bool, split_mode: str, seeds: tuple[int, ...], k: int, index_type: str,
             gpu: bool, epochs: int, batch_size: int, lr: float, patience: int, precision: str,
             reuse_home: Path | None, workers: int | None, threads: int | None, out_dir: Path, as_json: bool) -> None:
    """Reproduce the paper's Table 1: train, index and classify each dataset, write reports.

    For each dataset and seed: train CRNN and Attention-CRNN on the train split as the paper
    does (mix input, softmax) and our voice embedder (separated vocals, shuffle-and-remix,
    gain/tilt, AAM head, LDA/WCCN back end), or reuse matching models from an earlier run in
    OUT or from --home; classify the test songs with the softmax heads (crnn, attcrnn,
    voice), with the K nearest reference blocks of the train split in a FAISS index
    (attcrnn-knn = KNN-Net, crnn-knn, voice-knn), with Resemblyzer's pretrained GE2E speaker
    encoder and the same KNN vote (ge2e-knn), and with MFCC statistics + logistic regression
    (mfcc-logreg); blocks vote for their song. Where the corpus has voice stems (synth-corpus
    --stems), voice-knn-clean queries the voice model with the true voice stems and
    mfcc-logreg-clean trains and tests the baseline on them (the clean-voice ceiling). Writes
    OUT/report.json (versioned schema), OUT/report.md (Table 1 layout beside the paper's
    numbers) and OUT/report.html (figures embedded). Every dataset is read before training
    starts; one that fails later is recorded in the reports and the command exits 1.

    \b
    Example:
      singerid evaluate --dataset synthetic=demo-corpus --seeds 0 --epochs 8 --out demo-eval
      singerid evaluate --dataset artist20=data/artist20 --dataset singer32=data/singer32 --out table1
      singerid evaluate --dataset artist20=data/artist20 --methods attcrnn,attcrnn-knn --index auto --out r
    """
    import time

    import torch

    from singerid.config import FeatureConfig
    from singerid.errors import DatasetError
    from singerid.evaluation import format_summary
    from singerid.pipeline.evaluate import (EvaluateConfig, check_gpu, check_weights, evaluate as run_evaluation,
                                            prepare_datasets)

    started = time.perf_counter()
    cores = len(os.sched_getaffinity(0))
    torch.set_num_threads(threads or cores)
    if ablation:
        methods = (*methods, *(m for m in ABLATION_NAMES if m not in methods))
    cfg = EvaluateConfig(methods=methods, seeds=seeds, split=split_mode, k=k, feature=FeatureConfig(),
                         train=TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, patience=patience),
                         index=IndexConfig(index_type=index_type, gpu=gpu, k=k), precision=precision,
                         reuse_home=reuse_home,
                         workers=workers or cores)
    check_gpu(cfg)
    check_weights(cfg)
    prepared = prepare_datasets(datasets, cfg)
    run = run_evaluation(prepared, cfg, out_dir=out_dir, progress=show_progress())
    if as_json:
        click.echo(run.reports.json.read_text(encoding="utf-8"), nl=False)
    else:
        click.echo(format_summary(run.results))
        click.echo(f"reports: {run.reports.html} (figures), {run.reports.markdown}, {run.reports.json}")
        trained = sum(m.source == "trained" for m in run.models)
        click.echo(f"evaluated {len(prepared)} dataset(s) x {len(seeds)} seed(s), {len(methods)} method(s): "
                   f"{trained} model(s) trained, {len(run.models) - trained} reused, "
                   f"in {_duration(time.perf_counter() - started)}")
    if run.failed:
        what = "; ".join(f"{d.key}: {d.error}" for d in run.failed)
        raise DatasetError(f"{len(run.failed)} dataset(s) failed ({what}); the reports in {out_dir} record it")


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f} s"
