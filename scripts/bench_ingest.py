"""Benchmark corpus ingest: the local engine vs the Ray engine (a local Ray instance) on one corpus.

Usage: python scripts/bench_ingest.py [--quick] [--cpus N] [--repeat N] [--json-out PATH] [--keep DIR]

Writes a synthetic corpus (``singerid synth-corpus``: mp3, artist20 layout), a model with random
weights (speed does not depend on the weights; the attcrnn of bench_embed), and embeds every
song into fresh homes: with ``embed_tracks`` (this process, N torch threads) and with
``embed_tracks_ray`` (a local Ray instance with N CPUs, N actors x 1 thread), alternating,
``--repeat`` times (the best run of each is reported). For each: songs/s and x real time.
Ray's fixed costs are shown apart: starting the instance, then the run itself (which includes
starting the actors and loading the model in each); "1st song" is when the first song was
stored, "steady x RT" the rate after it (both engines commit through the same writer, which is
timed). Checks that both homes hold the same songs
and blocks. Prints a table, writes JSON, and prints a one-line JSON
summary last.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from singerid.config import FeatureConfig, ModelConfig
from singerid.datasets import load_dataset
from singerid.datasets.synth import generate_corpus
from singerid.datasets.synth_spec import CorpusSpec
from singerid.distributed import RayConfig, embed_tracks_ray
from singerid.distributed.cluster import ray_session
from singerid.embedder import checkpoint as ckpt
from singerid.embedder.model import build_model
from singerid.index.home import Home
from singerid.index.store import MetadataStore
from singerid.pipeline.embed_corpus import CorpusWriter, EmbedSummary, embed_tracks

QUICK = CorpusSpec(singers=4, albums=3, songs_per_album=2, seconds=30.0)  # 24 songs, 12 min of audio
FULL = CorpusSpec(singers=6, albums=3, songs_per_album=4, seconds=60.0)  # 72 songs, 72 min of audio
KIND = "attcrnn"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{_describe(QUICK)} (< 2 min)")
    parser.add_argument("--cpus", type=int, default=2, help="torch threads (local) = Ray CPUs = actors")
    parser.add_argument("--json-out", type=Path, default=Path("bench_ingest.json"), help="where to write the JSON")
    parser.add_argument("--repeat", type=int, default=None, help="runs of each engine, best kept [default: 1 with "
                        "--quick, else 3]")
    parser.add_argument("--keep", type=Path, default=None, help="keep corpus and homes here (default: a temp dir)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    spec = QUICK if args.quick else FULL
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench_ingest_"))
    try:
        result = run(root, spec, cpus=args.cpus, repeat=args.repeat or (1 if args.quick else 3))
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    _print_table(result)
    args.json_out.write_text(json.dumps(result, indent=2))
    print(json.dumps({"bench": "ingest", "songs": result["corpus"]["songs"], "cpus": args.cpus,
                      "local_x_real_time": result["local"]["x_real_time"],
                      "ray_x_real_time": result["ray"]["x_real_time"],
                      "ray_x_real_time_with_start": result["ray"]["x_real_time_with_start"],
                      "ray_vs_local": result["ray_vs_local"], "ray_vs_local_steady": result["ray_vs_local_steady"]}))


def run(root: Path, spec: CorpusSpec, *, cpus: int, repeat: int = 1) -> dict:
    """Generate, embed with both engines ``repeat`` times, check they agree; the best figures as a JSON-ready dict."""
    started = time.perf_counter()
    generate_corpus(root / "corpus", spec, workers=cpus)
    generate_seconds = time.perf_counter() - started
    tracks = load_dataset(root / "corpus", kind="artist20").tracks
    model_dir = _random_model(root / "model")

    torch.set_num_threads(cpus)
    cluster = RayConfig(num_cpus=cpus, actors=cpus, cpus_per_actor=1)
    started = time.perf_counter()
    clock = _CommitClock()
    runs: dict[str, list[tuple[EmbedSummary, dict]]] = {"local": [], "ray": []}
    with ray_session(cluster):  # embed_tracks_ray joins this session, so its time is the run's alone
        start_seconds = time.perf_counter() - started
        for i in range(repeat):  # alternating, each into fresh homes: a shared machine's load hits both alike
            local = _home(root / f"home-local-{i}", model_dir)
            runs["local"].append(clock.run(lambda: embed_tracks(local, tracks)))  # noqa: B023 - called at once
            remote = _home(root / f"home-ray-{i}", model_dir)
            runs["ray"].append(clock.run(lambda: embed_tracks_ray(remote, tracks, cluster=cluster)))  # noqa: B023
            _check_same(local, remote, runs["local"][-1][0], runs["ray"][-1][0])
    (by_local, local_timing), (by_ray, ray_timing) = (min(r, key=lambda x: x[0].seconds) for r in runs.values())
    return {
        "machine": {"cpu": platform.processor() or platform.machine(), "cores_available": len(os.sched_getaffinity(0)),
                    "torch": torch.__version__, "ray": _ray_version()},
        "corpus": {"songs": len(tracks), "seconds_per_song": spec.seconds, "audio_seconds": by_local.audio_seconds,
                   "blocks": by_local.n_blocks, "format": spec.audio_format, "generate_seconds": generate_seconds},
        "model": KIND, "cpus": cpus, "repeat": repeat,
        "seconds_of_each_run": {name: [round(x.seconds, 2) for x, _ in r] for name, r in runs.items()},
        "local": _figures(by_local, local_timing) | {"torch_threads": cpus},
        "ray": _figures(by_ray, ray_timing) | {"actors": cpus, "threads_per_actor": 1, "start_seconds": start_seconds,
                                   "x_real_time_with_start": by_ray.audio_seconds / (by_ray.seconds + start_seconds)},
        "ray_vs_local": by_ray.x_real_time / by_local.x_real_time,
        "ray_vs_local_steady": ray_timing["steady_x_real_time"] / local_timing["steady_x_real_time"],
    }


class _CommitClock:
    """Times each commit of ``CorpusWriter`` (both engines commit through it): when the first song
    was stored (the engine's start-up) and the rate after it (its steady state)."""

    def __init__(self) -> None:
        self.stamps: list[tuple[float, float]] = []  # (perf_counter, duration_seconds of the song)
        self._commit = CorpusWriter.commit
        clock = self

        def commit(writer, track, sha, vectors):  # noqa: ANN001, ANN202
            stored = clock._commit(writer, track, sha, vectors)
            clock.stamps.append((time.perf_counter(), vectors.duration_seconds))
            return stored

        CorpusWriter.commit = commit

    def run(self, call):  # noqa: ANN001, ANN201
        self.stamps.clear()
        started = time.perf_counter()
        summary = call()
        first, last = self.stamps[0][0], self.stamps[-1][0]
        audio_after_first = sum(d for _, d in self.stamps[1:])
        return summary, {"first_song_seconds": first - started,
                         "steady_x_real_time": audio_after_first / (last - first) if last > first else 0.0}


def _figures(summary: EmbedSummary, timing: dict) -> dict:
    return {"seconds": summary.seconds, "songs_per_s": summary.n_added / summary.seconds,
            "x_real_time": summary.x_real_time, "blocks_per_s": summary.n_blocks / summary.seconds} | timing


def _check_same(local: Home, remote: Home, by_local: EmbedSummary, by_ray: EmbedSummary) -> None:
    """Both engines stored every song, with the same blocks at the same offsets."""
    assert (by_ray.n_added, by_ray.n_blocks, by_ray.n_failed) == (by_local.n_added, by_local.n_blocks, 0)
    with MetadataStore(local.db_url(None)) as a, MetadataStore(remote.db_url(None)) as b:
        songs_a = {s.content_sha256: s.n_blocks for s in a.songs()}
        songs_b = {s.content_sha256: s.n_blocks for s in b.songs()}
    assert songs_a == songs_b, "the engines stored different songs"


def _home(root: Path, model_dir: Path) -> Home:
    home = Home(root).create()
    shutil.copytree(model_dir, home.model_dir(KIND))
    return home


def _random_model(model_dir: Path) -> Path:
    """An attcrnn with random weights and realistic batch-norm statistics (as scripts/bench_embed.py)."""
    torch.manual_seed(0)
    cfg = ModelConfig(kind=KIND, n_classes=20)
    model = build_model(cfg)
    model.train()
    with torch.no_grad():
        model(torch.from_numpy((np.random.default_rng(0).standard_normal((32, 128, 32)) * 15 - 40).astype(np.float32)))
    card = ckpt.ModelCard(model_config=cfg, feature_config=FeatureConfig(),
                          singers=tuple(f"singer{i:02d}" for i in range(20)), weights_sha256="")
    ckpt.save_model(model_dir, model.state_dict(), card)
    return model_dir


def _print_table(r: dict) -> None:
    c = r["corpus"]
    print(f"corpus: {c['songs']} songs x {c['seconds_per_song']:.0f} s ({c['format']}), {c['blocks']:,} blocks, "
          f"{c['audio_seconds'] / 60:.1f} min of audio; {r['cpus']} CPUs; model {r['model']}")
    print(f"{'engine':<28} {'seconds':>8} {'songs/s':>8} {'blocks/s':>9} {'x RT':>7} {'1st song':>9} "
          f"{'steady x RT':>12}")
    rows = [("local (%d torch threads)" % r["cpus"], r["local"]),
            ("ray (%d actors x 1 thread)" % r["ray"]["actors"], r["ray"])]
    for name, f in rows:
        print(f"{name:<28} {f['seconds']:>8.1f} {f['songs_per_s']:>8.2f} {f['blocks_per_s']:>9.0f} "
              f"{f['x_real_time']:>7.0f} {f['first_song_seconds']:>8.1f}s {f['steady_x_real_time']:>12.0f}")
    ray = r["ray"]
    print(f"{'ray incl. instance start':<28} {ray['seconds'] + ray['start_seconds']:>8.1f} {'':>8} {'':>9} "
          f"{ray['x_real_time_with_start']:>7.0f}   (instance start {ray['start_seconds']:.1f} s)")
    print(f"ray / local (x real time): {r['ray_vs_local']:.2f} whole run, {r['ray_vs_local_steady']:.2f} steady; "
          f"best of {r['repeat']} alternating runs, seconds of each: {r['seconds_of_each_run']}")


def _describe(spec: CorpusSpec) -> str:
    n = spec.singers * spec.albums * spec.songs_per_album
    return f"{n} songs x {spec.seconds:.0f} s"


def _ray_version() -> str:
    import ray

    return ray.__version__


if __name__ == "__main__":
    main()
