"""``singerid train``: fit the CRNN or Attention-CRNN embedder on a dataset's train split."""

from __future__ import annotations

from pathlib import Path

import click

from singerid.cli.common import (
    check_device_option, dataset_option, deprecated_split_rule_option, device_option, home_option, json_option,
    print_json, progress_mode, resolve_split_rule, set_threads, split_rule_option, threads_option,
)
from singerid.config import TrainConfig

DEFAULTS = TrainConfig()  # option defaults come from the dataclass (CRNN baseline values)
RECIPE_CHOICES = ("voice", "paper", "voice-no-separation", "voice-no-remix", "voice-no-gain-tilt",
                  "voice-softmax-head", "voice-with-adversary")  # singerid.embedder.recipes (paper = crnn/attcrnn)


@click.command()
@click.argument("data", type=click.Path(path_type=Path))
@dataset_option
@click.option("--model", "kind", type=click.Choice(["crnn", "attcrnn"]), default="attcrnn", show_default=True,
              help="crnn: the CRNN baseline (Nasrullah 2019); attcrnn: the paper's Attention-CRNN.")
@click.option("--recipe", type=click.Choice(RECIPE_CHOICES), default="voice", show_default=True,
              help="voice: our best measured configuration (separated vocals, shuffle-and-remix, gain/tilt, "
                   "AAM head, LDA/WCCN back end); paper: the KNN-Net paper's training (mix, softmax); the "
                   "others flip one lever of voice. The options below override single levers.")
@click.option("--input", "input_kind", type=click.Choice(["mix", "vocals"]), default=None,
              help="What the model hears: the mix, or the voice separated by Spleeter 2-stem [default: recipe].")
@click.option("--remix/--no-remix", default=None,
              help="Shuffle-and-remix separated vocals over other albums' accompaniment [default: recipe].")
@click.option("--gain-tilt/--no-gain-tilt", default=None, help="Random gain and EQ per block [default: recipe].")
@click.option("--album-adversary", type=click.FloatRange(min=0), default=None,
              help="Weight of an album classifier behind gradient reversal; 0 = off [default: recipe].")
@click.option("--head", type=click.Choice(["softmax", "aam"]), default=None,
              help="Stage-1 head: softmax (paper) or additive angular margin softmax [default: recipe].")
@home_option
@click.option("--epochs", type=click.IntRange(min=1), default=DEFAULTS.epochs, show_default=True,
              help="Most epochs to train (early stopping may end sooner).")
@click.option("--batch-size", type=click.IntRange(min=1), default=DEFAULTS.batch_size, show_default=True,
              help="Blocks per training batch.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=DEFAULTS.lr, show_default=True,
              help="Adam learning rate.")
@click.option("--patience", type=click.IntRange(min=1), default=DEFAULTS.patience, show_default=True,
              help="Stop after this many epochs without a better validation block accuracy.")
@click.option("--seed", type=click.IntRange(min=0), default=DEFAULTS.seed, show_default=True,
              help="Seed of the dataset split and of training (baseline seeds: 0, 21, 42).")
@click.option("--workers", type=click.IntRange(min=0), default=DEFAULTS.workers, show_default=True,
              help="Data-loading worker processes (0 = load in this process).")
@threads_option
@device_option
@click.option("--precision", type=click.Choice(["fp32", "bf16"]), default="fp32", show_default=True,
              help="bf16: bfloat16 autocast for the training pass, about 2x faster on CPUs with AMX or "
                   "AVX512-BF16 (slower elsewhere); the saved weights and inference stay float32.")
@split_rule_option
@deprecated_split_rule_option
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Feature cache directory [default: HOME/cache/features].")
@json_option
def train(data: Path, dataset: str, kind: str, recipe: str, input_kind: str | None, remix: bool | None,
          gain_tilt: bool | None, album_adversary: float | None, head: str | None, home: Path, epochs: int, batch_size: int, lr: float, patience: int,
          seed: int, workers: int, threads: int | None, device: str, precision: str, split_rule: str | None,
          old_split_rule: str | None, cache_dir: Path | None, as_json: bool) -> None:
    """Train the embedder on the train split of DATA, stopping early on the val split.

    By default the voice recipe: the model hears the voice separated from the mix and is
    trained so that it cannot lean on album accompaniment; every later step (embed-corpus,
    enrol, query) separates the voice itself. --recipe paper trains as the KNN-Net paper does.
    Writes HOME/models/MODEL/: model.safetensors (weights), model.json (configs, singers,
    metrics, SHA-256 of the weights) and train_log.json (per-epoch loss and accuracy). The
    log-mel of every song is cached under --cache-dir, so a second run or a second model
    decodes no audio. An interrupted run continues from its last finished epoch when the
    same command is run again. Bad audio files are skipped and counted in the log.

    \b
    Example:
      singerid train demo-corpus --model attcrnn --home H --epochs 30 --batch-size 32
      singerid train data/artist20 --dataset artist20 --model crnn --recipe paper --home H --seed 21
      singerid train demo-corpus --home H --no-remix --head softmax
      singerid train data/artist20 --home H --split-rule lists --device cuda
    """
    import dataclasses

    from singerid.config import FeatureConfig
    from singerid.datasets import load_dataset
    from singerid.embedder.recipes import get_recipe
    from singerid.embedder.train import train_embedder
    from singerid.pipeline.train import check_can_train

    rule = resolve_split_rule(split_rule, old_split_rule)
    set_threads(threads)
    device = check_device_option(device)
    check_can_train(home, kind, data=data)  # never overwrite a model the home's vectors depend on
    ds = load_dataset(data, kind=dataset, seed=seed, split=rule)
    train_cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, patience=patience, seed=seed,
                            workers=workers)
    chosen = get_recipe(kind if recipe == "paper" else recipe)
    overrides = {"input": input_kind, "remix": remix, "gain_tilt": gain_tilt, "album_adversary": album_adversary,
                 "head": head}
    given = {k: v for k, v in overrides.items() if v is not None and v != getattr(chosen, k)}
    name = f"{chosen.name}+custom" if given else chosen.name  # model.json says when a lever was changed by hand
    chosen = dataclasses.replace(chosen, name=name, kind=kind, **given)
    out_dir = home / "models" / kind
    result = train_embedder(ds.tracks, feature_cfg=FeatureConfig(), model_cfg=chosen.model_config(),
                            train_cfg=chosen.train_config(train_cfg), out_dir=out_dir,
                            cache_dir=cache_dir or home / "cache" / "features", progress=progress_mode(),
                            precision=precision, device=device, front_end=chosen.front_end(), recipe=chosen.name,
                            backend=chosen.backend)
    if as_json:
        print_json({"model_dir": str(result.model_dir), "model": kind, "recipe": chosen.name,
                    "levers": chosen.levers(), "dataset": ds.name,
                    "split_rule": ds.split_rule, "singers": len(result.singers),
                    "n_train_blocks": result.n_train_blocks, "n_val_blocks": result.n_val_blocks,
                    "best_epoch": result.best_epoch, "epochs_run": result.epochs_run,
                    "val_block_accuracy": result.val_block_accuracy, "seconds": round(result.seconds, 2),
                    "skipped": list(result.skipped), "stop_reason": result.stop_reason})
        return
    skipped = f", {len(result.skipped)} bad file(s) skipped" if result.skipped else ""
    click.echo(f"trained {kind} ({chosen.name}: input {chosen.input}, head {chosen.head}, remix "
               f"{'on' if chosen.remix else 'off'}) on {len(result.singers)} singers ({result.n_train_blocks:,} train / "
               f"{result.n_val_blocks:,} val blocks{skipped}; {ds.split_rule}): val block accuracy "
               f"{result.val_block_accuracy:.3f} at epoch {result.best_epoch} of {result.epochs_run} "
               f"in {_duration(result.seconds)} -> {result.model_dir}")


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f} s"
