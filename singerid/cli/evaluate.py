"""``singerid evaluate``: the paper's Table 1 on one or more datasets, written as three reports
and one predictions.csv per dataset, seed and method."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from singerid.cli.common import (check_device_option, deprecated_split_rule_option, device_option, json_option,
                                 print_json, progress_mode, resolve_split_rule, set_threads, split_rule_option,
                                 threads_option, workers_help)
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

    if value and param.name == "old_datasets":
        _deprecated("--dataset", "--data")
    try:
        return tuple(DatasetSpec.parse(v) for v in value)
    except ParameterError as exc:
        raise click.BadParameter(str(exc).removeprefix("--data ")) from None


def _old_home(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    if value is not None:
        _deprecated("--home", "--reuse-home")
    return value


def _deprecated(old: str, new: str) -> None:
    """The one stderr line of an old spelling (none with -q, as for --split)."""
    from singerid.cli.common import is_quiet

    if not is_quiet():
        click.echo(f"Deprecated: {old} is now {new} (the old spelling goes in the next release)", err=True)


def _merge_datasets(new: tuple, old: tuple) -> tuple:
    specs = (*new, *old)
    if not specs:
        raise click.UsageError("Missing option '--data' (KEY=PATH, e.g. --data synthetic=demo-corpus).")
    keys = [s.key for s in specs]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise click.BadParameter(f"dataset key {twice[0]!r} is given twice", param_hint="'--data'")
    return specs


@click.command()
@click.option("--data", "datasets", multiple=True, callback=_datasets, metavar="KEY=PATH",
              help="A dataset to evaluate (repeatable). KEY artist20 / singer32 / singer60 fills the paper's "
                   "A20 / S32 / S60 columns and picks that reader; any other KEY (e.g. synthetic) is reported "
                   "on its own and its layout detected.")
@click.option("--dataset", "old_datasets", multiple=True, callback=_datasets, metavar="KEY=PATH", hidden=True)
@click.option("--methods", default=",".join(METHOD_NAMES), show_default=True, callback=_methods,
              help="Comma list of report rows (*-clean rows run only where the corpus has voice stems).")
@click.option("--ablation", is_flag=True,
              help="Also train and report each lever of voice-knn flipped, one at a time (6 more models per seed).")
@split_rule_option
@deprecated_split_rule_option
@click.option("--seeds", default=DEFAULT_SEEDS, show_default=True, callback=_seeds,
              help="Comma list of seeds; each gives its own split and training run.")
@click.option("--k", type=click.IntRange(min=1), default=INDEX.k, show_default=True,
              help="Neighbours per block of the headline KNN numbers (accuracy vs K is always reported).")
@click.option("--index", "index_type", type=click.Choice(INDEX_CHOICES), default=INDEX.index_type,
              show_default=True, help="FAISS index of the reference blocks (flat = exact search).")
@click.option("--gpu", is_flag=True, help="Build the FAISS index on the GPU (faiss-gpu).")
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
@click.option("--reuse-home", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="A home whose trained models are reused when their settings and training data match.")
@click.option("--home", "old_reuse_home", type=click.Path(file_okay=False, path_type=Path), default=None,
              hidden=True, callback=_old_home)
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help=workers_help("computing the baseline's MFCCs") + " [default: all cores]")
@threads_option
@device_option
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Directory of the reports, predictions, trained models, indexes and caches (reused when rerun).")
@json_option
def evaluate(datasets, old_datasets, methods: tuple[str, ...], ablation: bool, split_rule: str | None,
             old_split_rule: str | None, seeds: tuple[int, ...], k: int, index_type: str, gpu: bool, epochs: int,
             batch_size: int, lr: float, patience: int, precision: str, reuse_home: Path | None,
             old_reuse_home: Path | None, workers: int | None, threads: int | None, device: str, out_dir: Path,
             as_json: bool) -> None:
    """Reproduce the paper's Table 1: train, index and classify each dataset, write reports.

    For each dataset and seed: train CRNN and Attention-CRNN on the train split as the paper
    does (mix input, softmax) and our voice embedder (separated vocals, shuffle-and-remix,
    gain/tilt, AAM head, LDA/WCCN back end), or reuse matching models from an earlier run in
    OUT or from --reuse-home; classify the test songs with the softmax heads (crnn, attcrnn,
    voice), with the K nearest reference blocks of the train split in a FAISS index
    (attcrnn-knn = KNN-Net, crnn-knn, voice-knn), with Resemblyzer's pretrained GE2E speaker
    encoder and the same KNN vote (ge2e-knn), and with MFCC statistics + logistic regression
    (mfcc-logreg); blocks vote for their song. Where the corpus has voice stems (synth-corpus
    --stems), voice-knn-clean queries the voice model with the true voice stems and
    mfcc-logreg-clean trains and tests the baseline on them (the clean-voice ceiling).

    Writes OUT/report.json (versioned schema), OUT/report.md (your numbers first; the paper's
    Table 1 beside them when a paper dataset ran), OUT/report.html (figures embedded) and
    OUT/predictions/DATASET/seed-N/METHOD.csv (one row per test song: true singer, predicted,
    vote share, similarity). Every dataset is read before training starts; one that fails
    later is recorded in the reports and the command exits 1. --device runs training and
    embedding on that torch device. Progress: bars on a terminal, one line per stage
    otherwise, nothing with -q. --json prints a summary (reports, predictions, numbers).

    Exit status (as embed-corpus and enrol): 0 every dataset was evaluated (songs that cannot
    be decoded are skipped, logged and left out of the counts); 1 some dataset failed and the
    others were reported; 2 usage error.

    \b
    Example:
      singerid evaluate --data synthetic=demo-corpus --seeds 0 --epochs 8 --out demo-eval
      singerid evaluate --data artist20=data/artist20 --data singer32=data/singer32 --out table1
      singerid evaluate --data artist20=data/artist20 --methods attcrnn,attcrnn-knn --index auto --out r
    """
    import time

    from singerid.config import FeatureConfig
    from singerid.errors import DatasetError, ParameterError
    from singerid.evaluation import format_summary
    from singerid.pipeline.evaluate import (EvaluateConfig, check_gpu, check_weights, evaluate as run_evaluation,
                                            prepare_datasets)

    started = time.perf_counter()
    datasets = _merge_datasets(datasets, old_datasets)
    split = resolve_split_rule(split_rule, old_split_rule)
    if old_reuse_home is not None and reuse_home is not None and old_reuse_home != reuse_home:
        raise ParameterError(f"--home {old_reuse_home} and --reuse-home {reuse_home} disagree; "
                             "give --reuse-home only")
    device = check_device_option(device)
    cores = set_threads(threads)
    if ablation:
        methods = (*methods, *(m for m in ABLATION_NAMES if m not in methods))
    cfg = EvaluateConfig(methods=methods, seeds=seeds, split=split, k=k, feature=FeatureConfig(),
                         train=TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, patience=patience),
                         index=IndexConfig(index_type=index_type, gpu=gpu, k=k), precision=precision,
                         reuse_home=reuse_home or old_reuse_home, workers=workers or cores, device=device)
    check_gpu(cfg)
    check_weights(cfg)
    prepared = prepare_datasets(datasets, cfg)
    run = run_evaluation(prepared, cfg, out_dir=out_dir, progress=progress_mode())
    seconds = time.perf_counter() - started
    if as_json:
        print_json(machine_summary(run, seconds))
    else:
        click.echo(format_summary(run.results))
        click.echo(f"reports: {run.reports.html} (figures), {run.reports.markdown}, {run.reports.json}")
        click.echo(f"predictions: {len(run.reports.predictions)} CSV file(s) under {out_dir / 'predictions'} "
                   "(one row per test song)")
        click.echo(f"evaluated {len(prepared)} dataset(s) x {len(seeds)} seed(s), {len(methods)} method(s): "
                   f"{_models_line(run.models)}, in {_duration(seconds)}")
    if run.failed:
        what = "; ".join(f"{d.key}: {d.error}" for d in run.failed)
        raise DatasetError(f"{len(run.failed)} dataset(s) failed ({what}); the reports in {out_dir} record it")


def _models_line(models) -> str:
    """"3 model(s) trained, 0 reused" (+ "(their training took 41.2 s)" when any was reused)."""
    trained = sum(m.source == "trained" for m in models)
    reused = [m for m in models if m.source != "trained"]
    line = f"{trained} model(s) trained, {len(reused)} reused"
    if reused:
        line += f" (trained earlier in {_duration(sum(m.train_seconds or 0.0 for m in reused))})"
    return line


def machine_summary(run, seconds: float) -> dict[str, Any]:
    """What --json prints: where everything was written and each method's headline numbers."""
    from singerid.evaluation.summary import summarise

    datasets = {}
    for s in summarise(run.results):
        datasets[s.key] = {
            "split_rule": s.result.split_rule, "seeds": list(s.result.seeds), "error": s.result.error,
            "methods": {m.method: {"seeds": list(m.seeds), "song_accuracy": m.song.accuracy.mean,
                                   "song_f1": m.song.f1.mean,
                                   "block_accuracy": None if m.block is None else m.block.accuracy.mean}
                        for m in s.methods}}
    return {"reports": {"json": str(run.reports.json), "markdown": str(run.reports.markdown),
                        "html": str(run.reports.html)},
            "predictions": [str(p) for p in run.reports.predictions],
            "models": [{"kind": m.kind, "source": m.source, "model_dir": str(m.model_dir),
                        "train_seconds": m.train_seconds} for m in run.models],
            "datasets": datasets, "seconds": round(seconds, 3)}


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f} s"
