"""Vector-database commands: embed-corpus and build-index."""

from __future__ import annotations

from pathlib import Path

import click

from singerid.cli.common import (
    SUBSETS, check_device_option, dataset_option, db_option, device_option, home_option, json_option, parse_bytes,
    print_json, progress_mode, set_threads, split_rule_option, threads_option,
)
from singerid.constants import SEARCH_AGREEMENT

INDEX_TYPES = ("flat", "flat-fp16", "ivf-flat", "ivf-pq", "hnsw", "auto")


def _home(path: Path):
    from singerid.index.home import Home

    return Home.resolve(path)


@click.command("embed-corpus")
@click.argument("data_dir", type=click.Path(path_type=Path))
@home_option
@db_option
@dataset_option
@click.option("--split", "which", type=click.Choice(SUBSETS), default="train",
              show_default=True, help="Which songs to store (the reference set is the training split).")
@split_rule_option
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the split.")
@click.option("--model", "model_kind", type=click.Choice(["crnn", "attcrnn"]), default=None,
              help="Embedder in HOME/models/ [default: the home's, else attcrnn].")
@click.option("--batch-size", type=click.IntRange(1), default=64, show_default=True,
              help="Blocks per forward pass (64 is fastest on CPU: scripts/bench_embed.py).")
@threads_option
@device_option
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: this process; ray: a Ray Data pipeline of actors (a local instance, or --address).")
@click.option("--address", default=None, metavar="ADDR",
              help="Ray cluster to run on (--engine ray): auto, HOST:PORT or ray://HOST:10001 "
                   "[default: start a local instance].")
@click.option("--ray-cpus", type=click.IntRange(1), default=None,
              help="CPUs of the local Ray instance (--engine ray) [default: all cores available].")
@click.option("--actors", type=click.IntRange(1), default=None,
              help="Ray actors, each loading the model once (--engine ray) [default: as many as the CPUs, "
                   "or GPUs, hold]; --threads is then the CPUs (torch threads) of each, default 1.")
@click.option("--actor-gpus", type=click.FloatRange(0), default=None,
              help="GPUs per Ray actor (--engine ray) [default: 1 when the cluster has GPUs, else 0].")
@click.option("--retry-failed", is_flag=True,
              help="Try again files that failed in an earlier run although they have not changed since.")
@json_option
def embed_corpus(data_dir: Path, home: Path, db_url: str | None, dataset: str, which: str, split_rule: str | None,
                 seed: int, model_kind: str | None, batch_size: int, threads: int | None, device: str, engine: str,
                 address: str | None, ray_cpus: int | None, actors: int | None, actor_gpus: float | None,
                 retry_failed: bool, as_json: bool) -> None:
    """Embed the songs of DATA_DIR into the home's vector database (resumable, idempotent).

    Each song is decoded, cut into 1-s blocks, embedded and stored in one transaction; a
    rerun skips songs already stored. A bad file never stops the run: it is recorded (once per
    file, see `singerid info`) and the rest are stored; a rerun does not try it again while it
    is unchanged (same size and mtime) unless --retry-failed.

    Exit status (as enrol and evaluate): 0 every song is stored; 1 some files failed (now, or
    in an earlier run and unchanged) and the others were stored; 2 usage error. With --engine ray
    the songs are embedded by Ray actors (on this machine, or on a cluster given by --address,
    whose nodes must see DATA_DIR at the same path) and stored here, the same way.

    \b
    Example:
      singerid embed-corpus corpus/ --home H --split train
      singerid embed-corpus data/artist20 --home H --split-rule lists --threads 4
      singerid embed-corpus corpus/ --home H --engine ray --ray-cpus 8
      singerid embed-corpus /mnt/songs --home H --engine ray --address auto --db postgresql+psycopg://u@db/singerid
    """
    from singerid.datasets import load_dataset
    from singerid.pipeline.embed_corpus import embed_tracks

    ray_cfg = _ray_config(engine, device, address=address, ray_cpus=ray_cpus, actors=actors, actor_gpus=actor_gpus,
                          threads=threads)
    set_threads(threads if ray_cfg is None else 1)  # with Ray the driver only stores; the actors embed
    device = check_device_option(device)
    data = load_dataset(data_dir, kind=dataset, seed=seed, split=split_rule or "album")
    tracks = data.tracks if which == "all" else data.select(which)
    if ray_cfg is None:
        summary = embed_tracks(_home(home), tracks, model_kind=model_kind, db_url=db_url, batch_size=batch_size,
                               progress=progress_mode(), device=device, retry_failed=retry_failed)
    else:
        from singerid.distributed import embed_tracks_ray

        summary = embed_tracks_ray(_home(home), tracks, cluster=ray_cfg, model_kind=model_kind, db_url=db_url,
                                   batch_size=batch_size, progress=progress_mode(), retry_failed=retry_failed)
    if as_json:
        print_json({"dataset": data.name, "split_rule": data.split_rule, "split": which, "songs": summary.n_songs,
                    "added": summary.n_added, "skipped": summary.n_skipped, "failed": summary.n_failed,
                    "blocks": summary.n_blocks, "seconds": round(summary.seconds, 3),
                    "x_real_time": round(summary.x_real_time, 1), "repaired_rows": summary.repaired_rows,
                    "failures": [{"path": p, "error": e} for p, e in summary.failures],
                    "failed_before": [{"path": p, "error": e} for p, e in summary.failed_before]})
        _exit_if_incomplete(summary)
        return
    click.echo(f"{data.name} ({data.layout}), {which} split: {data.split_rule}")
    click.echo(f"{'songs':>8} {'added':>8} {'skipped':>8} {'failed':>8} {'blocks':>9} {'seconds':>8} {'x RT':>7}")
    click.echo(f"{summary.n_songs:>8,} {summary.n_added:>8,} {summary.n_skipped:>8,} {summary.n_failed:>8,} "
               f"{summary.n_blocks:>9,} {summary.seconds:>8.1f} {summary.x_real_time:>7,.0f}")
    for path, error in summary.failures:
        click.echo(f"failed: {error}", err=True)
    for path, error in summary.failed_before:
        click.echo(f"failed before, unchanged, not retried: {error}", err=True)
    if summary.repaired_rows:
        click.echo(f"repaired: dropped {summary.repaired_rows} uncommitted rows of an interrupted run", err=True)
    click.echo(summary.line())
    _exit_if_incomplete(summary)


def _exit_if_incomplete(summary) -> None:  # noqa: ANN001 - EmbedSummary (imported lazily)
    """Exit status 1 (one line on stderr) when some songs were not stored; the rest were."""
    from singerid.errors import SingeridError

    if not summary.complete:
        n_bad = summary.n_failed + summary.n_failed_before
        retry = " (--retry-failed tries the unchanged ones again)" if summary.n_failed_before else ""
        raise SingeridError(f"{n_bad:,} of {summary.n_songs:,} songs could not be stored{retry}; "
                            f"the other {summary.n_songs - n_bad:,} are stored")


def _ray_config(engine: str, device: str, *, address: str | None, ray_cpus: int | None, actors: int | None,
                actor_gpus: float | None, threads: int | None):  # noqa: ANN202 - RayConfig | None
    """The RayConfig of --engine ray (None for local); ParameterError for Ray options given to the local engine."""
    from singerid.errors import ParameterError

    ray_options = {"--address": address, "--ray-cpus": ray_cpus, "--actors": actors, "--actor-gpus": actor_gpus}
    if engine == "local":
        given = [name for name, value in ray_options.items() if value is not None]
        if given:
            raise ParameterError(f"{', '.join(given)} apply to --engine ray only; add --engine ray")
        return None
    if device != "cpu":
        raise ParameterError(f"--device {device} applies to --engine local; with --engine ray the actors use GPUs "
                             "when the cluster has them (--actor-gpus)")
    if address is not None and ray_cpus is not None:
        raise ParameterError("--ray-cpus sizes a local Ray instance; a cluster given by --address has its own CPUs")
    from singerid.distributed import RayConfig

    return RayConfig(address=address, num_cpus=ray_cpus, actors=actors, cpus_per_actor=threads or 1,
                     gpus_per_actor=actor_gpus)


@click.command("build-index")
@home_option
@db_option
@click.option("--type", "index_type", type=click.Choice(INDEX_TYPES), default="flat", show_default=True,
              help="flat = exact (the paper's dense KNN layer); auto picks flat, ivf-flat, ivf-pq or on-disk "
                   "ivf lists by the number of vectors, their dimension and --memory-budget.")
@click.option("--gpu", is_flag=True, help="Train and fill the index on the GPU (faiss-gpu); saved in CPU form.")
@click.option("--nlist", type=click.IntRange(1), default=None, help="IVF cells (ivf-*) [default: ~sqrt(vectors)].")
@click.option("--m", "m", type=click.IntRange(1), default=None, help="PQ sub-quantisers (ivf-pq) or links (hnsw).")
@click.option("--nprobe", type=click.IntRange(1), default=None,
              help="IVF cells searched per query block, stored as the index's default [default: tuned, see "
                   "--search-agreement].")
@click.option("--ef", "ef_search", type=click.IntRange(1), default=None,
              help="HNSW search breadth, stored as the index's default [default: tuned, see --search-agreement].")
@click.option("--search-agreement", type=click.FloatRange(0, 1, min_open=True), default=SEARCH_AGREEMENT,
              show_default=True,
              help="ivf-* / hnsw left without --nprobe / --ef: the search setting is tuned on held-out songs to the "
                   "cheapest one whose song decisions agree with exact search on this fraction of them.")
@click.option("--memory-budget", default="8G", show_default=True,
              help="RAM the index may use, e.g. 512M, 8G: auto chooses by it, and on-disk lists are built "
                   "in parts that fit it.")
@click.option("--on-disk", is_flag=True,
              help="Keep the inverted lists of an ivf-flat / ivf-pq index in a memory-mapped .ivfdata file "
                   "(auto decides this itself).")
@click.option("--split", "splits", multiple=True, type=click.Choice(["train", "val", "test"]),
              help="Index only these splits' blocks (repeatable) [default: every stored block].")
@threads_option
@click.option("--backend", type=click.Choice(["auto", "none", "lda-wccn"]), default="auto", show_default=True,
              help="Projection fitted on the indexed blocks before search: lda-wccn (centring, LDA and WCCN with "
                   "singers as classes; ours), none (raw cosine, the paper), auto (what the model's recipe used).")
@json_option
def build_index(home: Path, db_url: str | None, index_type: str, gpu: bool, nlist: int | None, m: int | None,
                nprobe: int | None, ef_search: int | None, search_agreement: float, memory_budget: str, on_disk: bool,
                splits: tuple[str, ...], backend: str, threads: int | None, as_json: bool) -> None:
    """Build the FAISS inner-product index of the stored block embeddings.

    Vectors stream from the embedding shards in chunks, so RAM holds the index, not the
    corpus. --threads sets the CPU threads of FAISS (and torch); --gpu trains and fills it
    on the GPU. `query --nprobe/--ef` override the search settings per query.

    \b
    Example:
      singerid build-index --home H
      singerid build-index --home H --type auto --memory-budget 2G
      singerid build-index --home H --type ivf-pq --on-disk --nprobe 64
      singerid build-index --home H --gpu
      singerid build-index --home H --split train --threads 2 --json
    """
    import faiss

    from singerid.config import IndexConfig
    from singerid.pipeline.build_index import build_index as build

    faiss.omp_set_num_threads(set_threads(threads))

    cfg = IndexConfig(index_type=index_type, nlist=nlist, m=m, nprobe=nprobe, ef_search=ef_search,
                      search_agreement=search_agreement, memory_budget_bytes=parse_bytes(memory_budget), on_disk=on_disk, gpu=gpu, backend=backend)
    summary = build(_home(home), cfg=cfg, db_url=db_url, splits=splits or None, progress=progress_mode())
    if as_json:
        print_json({"type": summary.index_type, "factory_key": summary.factory_key, "n_vectors": summary.n_vectors,
                    "dim": summary.dim, "file": str(summary.path), "size_bytes": summary.size_bytes,
                    "seconds": round(summary.seconds, 3), "gpu": summary.gpu, "backend": summary.backend,
                    "on_disk": summary.on_disk, "data_bytes": summary.data_bytes,
                    "unknown_threshold": summary.unknown_threshold, "unknown_eer": summary.unknown_eer,
                    "search_tuning": None if summary.tuning is None else summary.tuning.to_dict(),
                    "exact_instead": summary.exact_instead})
        return
    click.echo(summary.line())
