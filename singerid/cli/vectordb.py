"""Vector-database commands: embed-corpus, build-index, query, enrol, remove, info."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from singerid.cli.common import (
    dataset_option, db_option, home_option, json_option, parse_bytes, print_json, show_progress,
)
from singerid.errors import ArtefactError, SingeridError

INDEX_TYPES = ("flat", "flat-fp16", "ivf-pq", "hnsw", "auto")


def _home(path: Path):
    from singerid.index.home import Home

    return Home.resolve(path)


@click.command("embed-corpus")
@click.argument("data_dir", type=click.Path(path_type=Path))
@home_option
@db_option
@dataset_option
@click.option("--split", "which", type=click.Choice(["train", "val", "test", "all"]), default="train",
              show_default=True, help="Which songs to store (the reference set is the training split).")
@click.option("--split-rule", type=click.Choice(["album", "lists", "song"]), default="album", show_default=True,
              help="How songs are assigned to splits (album = the paper's protocol).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the split.")
@click.option("--model", "model_kind", type=click.Choice(["crnn", "attcrnn"]), default=None,
              help="Embedder in HOME/models/ [default: the home's, else attcrnn].")
@click.option("--batch-size", type=click.IntRange(1), default=64, show_default=True, help="Blocks per forward pass (64 is fastest on CPU: scripts/bench_embed.py).")
@json_option
def embed_corpus(data_dir: Path, home: Path, db_url: str | None, dataset: str, which: str, split_rule: str, seed: int,
                 model_kind: str | None, batch_size: int, as_json: bool) -> None:
    """Embed the songs of DATA_DIR into the home's vector database (resumable, idempotent).

    Each song is decoded, cut into 1-s blocks, embedded and stored in one transaction; a
    rerun skips songs already stored, and bad files are recorded and skipped.

    \b
    Example:
      singerid embed-corpus corpus/ --home H --split train
    """
    from singerid.datasets import load_dataset
    from singerid.pipeline.embed_corpus import embed_tracks

    data = load_dataset(data_dir, kind=dataset, seed=seed, split=split_rule)
    tracks = data.tracks if which == "all" else data.select(which)
    summary = embed_tracks(_home(home), tracks, model_kind=model_kind, db_url=db_url, batch_size=batch_size,
                           progress=show_progress())
    if as_json:
        print_json({"dataset": data.name, "split_rule": data.split_rule, "split": which, "songs": summary.n_songs,
                    "added": summary.n_added, "skipped": summary.n_skipped, "failed": summary.n_failed,
                    "blocks": summary.n_blocks, "seconds": round(summary.seconds, 3),
                    "x_real_time": round(summary.x_real_time, 1), "repaired_rows": summary.repaired_rows,
                    "failures": [{"path": p, "error": e} for p, e in summary.failures]})
        return
    click.echo(f"{data.name} ({data.layout}), {which} split: {data.split_rule}")
    click.echo(f"{'songs':>8} {'added':>8} {'skipped':>8} {'failed':>8} {'blocks':>9} {'seconds':>8} {'x RT':>7}")
    click.echo(f"{summary.n_songs:>8,} {summary.n_added:>8,} {summary.n_skipped:>8,} {summary.n_failed:>8,} "
               f"{summary.n_blocks:>9,} {summary.seconds:>8.1f} {summary.x_real_time:>7,.0f}")
    for path, error in summary.failures:
        click.echo(f"failed: {error}", err=True)
    if summary.repaired_rows:
        click.echo(f"repaired: dropped {summary.repaired_rows} uncommitted rows of an interrupted run", err=True)
    click.echo(summary.line())


@click.command("build-index")
@home_option
@db_option
@click.option("--type", "index_type", type=click.Choice(INDEX_TYPES), default="flat", show_default=True,
              help="flat = exact (the paper's dense KNN layer); auto picks by size and --memory-budget.")
@click.option("--gpu", is_flag=True, help="Train and fill the index on the GPU (faiss-gpu); saved in CPU form.")
@click.option("--nlist", type=click.IntRange(1), default=None, help="IVF cells (ivf-pq) [default: from the size].")
@click.option("--m", "m", type=click.IntRange(1), default=None, help="PQ sub-quantisers (ivf-pq) or links (hnsw).")
@click.option("--nprobe", type=click.IntRange(1), default=16, show_default=True, help="IVF cells searched per query.")
@click.option("--ef", "ef_search", type=click.IntRange(1), default=64, show_default=True, help="HNSW search breadth.")
@click.option("--memory-budget", default="8G", show_default=True, help="RAM the index may use (auto), e.g. 512M, 8G.")
@click.option("--split", "splits", multiple=True, type=click.Choice(["train", "val", "test"]),
              help="Index only these splits' blocks (repeatable) [default: every stored block].")
@click.option("--backend", type=click.Choice(["auto", "none", "lda-wccn"]), default="auto", show_default=True,
              help="Projection fitted on the indexed blocks before search: lda-wccn (centring, LDA and WCCN with "
                   "singers as classes; ours), none (raw cosine, the paper), auto (what the model's recipe used).")
@json_option
def build_index(home: Path, db_url: str | None, index_type: str, gpu: bool, nlist: int | None, m: int | None,
                nprobe: int, ef_search: int, memory_budget: str, splits: tuple[str, ...], backend: str,
                as_json: bool) -> None:
    """Build the FAISS inner-product index of the stored block embeddings.

    \b
    Example:
      singerid build-index --home H
      singerid build-index --home H --type auto --memory-budget 2G
      singerid build-index --home H --gpu
    """
    from singerid.config import IndexConfig
    from singerid.pipeline.build_index import build_index as build

    cfg = IndexConfig(index_type=index_type, nlist=nlist, m=m, nprobe=nprobe, ef_search=ef_search,
                      memory_budget_bytes=parse_bytes(memory_budget), gpu=gpu, backend=backend)
    summary = build(_home(home), cfg=cfg, db_url=db_url, splits=splits or None, progress=show_progress())
    if as_json:
        print_json({"type": summary.index_type, "factory_key": summary.factory_key, "n_vectors": summary.n_vectors,
                    "dim": summary.dim, "file": str(summary.path), "size_bytes": summary.size_bytes,
                    "seconds": round(summary.seconds, 3), "gpu": summary.gpu, "backend": summary.backend,
                    "unknown_threshold": summary.unknown_threshold, "unknown_eer": summary.unknown_eer})
        return
    click.echo(summary.line())


@click.command("enrol")
@click.argument("singer")
@click.argument("songs", nargs=-1, required=True, type=click.Path(path_type=Path))
@home_option
@db_option
@click.option("--album", default=None, help="Album name to record for these songs.")
def enrol(singer: str, songs: tuple[Path, ...], home: Path, db_url: str | None, album: str | None) -> None:
    """Add a new SINGER from SONGS without retraining: stored, indexed, queryable at once.

    \b
    Example:
      singerid enrol "Nina Simone" feeling_good.mp3 sinnerman.flac --home H
    """
    from singerid.pipeline.manage import enrol as do_enrol

    summary = do_enrol(_home(home), singer, songs, db_url=db_url, album=album, progress=show_progress())
    if summary.embed is not None:
        for _, error in summary.embed.failures:
            click.echo(f"failed: {error}", err=True)
    where = (f"index now holds {summary.index_vectors:,} vectors" if summary.index_vectors is not None
             else "no index yet: run `singerid build-index`")
    skipped = f" ({summary.embed.n_skipped} already stored, skipped)" if summary.embed and summary.embed.n_skipped else ""
    click.echo(f"enrolled {singer}: {summary.n_songs} song(s), {summary.n_blocks:,} blocks{skipped}; {where}")
    if summary.embed is not None and summary.embed.n_failed:
        raise SingeridError(f"{summary.embed.n_failed} of {len(songs)} song(s) could not be enrolled")


@click.command("remove")
@home_option
@db_option
@click.option("--singer", default=None, help="Remove this singer and all their songs.")
@click.option("--song", "songs", multiple=True, type=click.Path(path_type=Path), help="Remove this song (repeatable).")
def remove(home: Path, db_url: str | None, singer: str | None, songs: tuple[Path, ...]) -> None:
    """Remove a singer or songs from the store and the index.

    \b
    Example:
      singerid remove --singer "Nina Simone" --home H
      singerid remove --song feeling_good.mp3 --home H
    """
    from singerid.pipeline.manage import remove as do_remove

    if (singer is None) == (not songs):
        raise click.UsageError("give exactly one of --singer NAME or --song PATH (repeatable)")
    summary = do_remove(_home(home), singer=singer, songs=songs, db_url=db_url)
    where = f"; index now holds {summary.index_vectors:,} vectors" if summary.index_vectors is not None else ""
    click.echo(f"removed {summary.n_songs} song(s), {summary.n_blocks:,} blocks{where}")


@click.command("info")
@home_option
@db_option
@click.option("--check", is_flag=True, help="Full consistency check (ids, checksums); exit 1 on any problem.")
@json_option
def info(home: Path, db_url: str | None, check: bool, as_json: bool) -> None:
    """Show what a home holds (singers, songs, blocks per split, model, index) and whether it agrees.

    \b
    Example:
      singerid info --home H
      singerid info --home H --check --json
    """
    from singerid.pipeline.manage import info as gather

    data = gather(_home(home), db_url=db_url, check=check)
    if as_json:
        print_json(data)
    else:
        _print_info(data)
    if check and data["problems"]:
        raise ArtefactError(f"{len(data['problems'])} problem(s) in {data['home']}: {data['problems'][0]}")


def _print_info(data: dict[str, Any]) -> None:
    click.echo(f"home: {data['home']}")
    model = data.get("model")
    if model:
        detail = model.get("error") or f"sha256 {model['sha256'][:12]}, d={model['embedding_dim']}, " \
                                       f"{model['singers_trained']} training singers"
        click.echo(f"model: {model['kind']} ({detail})")
        if "front_end_description" in model:
            recipe = ", ".join(f"{k} {v}" for k, v in model["training"].items())
            click.echo(f"hears: {model['front_end_description']}; trained with {recipe}")
    index = data.get("index")
    click.echo("index: " + ("none (run `singerid build-index`)" if not index else
                            f"{index['type']} ({index['factory_key']}), {index['n_vectors']:,} vectors, d={index['dim']}, "
                            f"{index['size_bytes'] / 2**20:,.1f} MiB, back end {index['backend']}, "
                            f"built {index['built_at']}"))
    cal = data.get("unknown_calibration")
    if cal:
        click.echo(f"unknown-singer threshold: mean similarity {cal['min_similarity']:.3f} "
                   f"(EER {cal['equal_error_rate']:.1%} over {cal['n_songs']} reference songs)")
    click.echo(f"{data['n_singers']:,} singers, {data['n_songs']:,} songs, {data['n_blocks']:,} blocks, "
               f"{data['failures']:,} recorded failures")
    splits = ("train", "val", "test")
    click.echo(f"  {'singer':<28} {'kind':<9}" + "".join(f"{s:>14}" for s in splits))
    for s in data["singers"]:
        cells = "".join(f"{s['splits'].get(sp, {}).get('n_songs', 0):>5} /{s['splits'].get(sp, {}).get('n_blocks', 0):>6}"
                        for sp in splits)
        click.echo(f"  {s['name']:<28} {s['kind']:<9}{cells}")
    click.echo("  (songs / blocks per split)")
    if data["problems"]:
        for p in data["problems"]:
            click.echo(f"problem: {p}", err=True)
    else:
        click.echo("consistent: model, store, index and manifest agree")
