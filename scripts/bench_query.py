"""Benchmark: end-to-end latency of one song query against a singer60-size vector database.

Builds a throw-away home with an (untrained, same-architecture) Attention-CRNN, a metadata
store of N reference blocks (default 1,000,000 = singer60's ~4,200 songs x 240 blocks) with
random unit embeddings in shards, and a flat FAISS index; then queries one generated
4-minute song and breaks the latency down into decode, features, embedding, search, vote and
metadata look-up. With ``--input vocals`` the model's front end separates the voice first
(Spleeter 2-stem) and the separation is its own stage. Prints a table and writes JSON (last
stdout line = JSON summary).

Usage: python scripts/bench_query.py [--quick] [--blocks 1000000] [--input mix|vocals] [--json-out bench-out/query.json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the CLI does: before torch and faiss load

import numpy as np
import soundfile as sf
import torch

from singerid.audio import LogMel, iter_audio
from singerid.config import FeatureConfig, IndexConfig, ModelConfig
from singerid.embedder.checkpoint import ModelCard, save_model
from singerid.embedder.model import build_model
from singerid.frontend import FrontEndConfig
from singerid.index.home import Home
from singerid.index.shards import ShardSet
from singerid.index.store_records import NewSong
from singerid.pipeline.build_index import build_index
from singerid.pipeline.common import open_store, record_model
from singerid.pipeline.query import QueryEngine

BLOCKS_PER_SONG = 240  # a 4-minute song (datasets notes)


def make_home(root: Path, n_blocks: int, n_singers: int, front_end: FrontEndConfig = FrontEndConfig()) -> Home:
    home = Home(root).create()
    singers = tuple(f"singer{i:02d}" for i in range(n_singers))
    cfg = ModelConfig(kind="attcrnn", n_classes=n_singers)
    torch.manual_seed(0)
    save_model(home.model_dir("attcrnn"), build_model(cfg).state_dict(),
               ModelCard(model_config=cfg, feature_config=FeatureConfig(), singers=singers, weights_sha256="",
                         front_end=front_end))
    from singerid.embedder.embed import Embedder

    embedder = Embedder.load(home.model_dir("attcrnn"))
    record_model(home, home.read_manifest(missing_ok=True), embedder)
    rng = np.random.default_rng(0)
    d = embedder.embedding_dim
    offsets = np.arange(BLOCKS_PER_SONG) * FeatureConfig().block_hop_seconds
    with open_store(home, None) as store, ShardSet.open_writer(home.shards_dir, d, committed_rows={},
                                                               durable=False) as shards:
        store.bind_embeddings(embedder.weights_sha256, embedder.feature_config)
        for song in range(n_blocks // BLOCKS_PER_SONG):
            vectors = rng.standard_normal((BLOCKS_PER_SONG, d)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            span = shards.append(vectors)
            singer = singers[song % n_singers]
            store.add_song(NewSong(path=f"/ref/{singer}/{song:05d}.mp3", content_sha256=f"{song:064x}",
                                   singer=singer, song_key=f"{singer}/{song:05d}", split="train",
                                   duration_seconds=240.0, dataset="bench"),
                           offsets_seconds=offsets, shard=span.shard, first_row=span.first_row)
    build_index(home, cfg=IndexConfig(index_type="flat"))
    return home


def write_song(path: Path, seconds: float) -> Path:
    sr = 16000
    t = np.arange(int(seconds * sr)) / sr
    x = 0.2 * np.sin(2 * np.pi * 220 * t * (1 + 0.02 * np.sin(2 * np.pi * 5 * t))) + 0.02 * np.random.default_rng(1).standard_normal(t.size)
    sf.write(path, x.astype(np.float32), sr, format="MP3")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 reference blocks instead of 1,000,000")
    parser.add_argument("--blocks", type=int, default=None, help="reference blocks in the index")
    parser.add_argument("--seconds", type=float, default=240.0, help="length of the query song")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--input", choices=("mix", "vocals"), default="mix",
                        help="the model's front end: the mix, or Spleeter-separated vocals")
    parser.add_argument("--json-out", type=Path, default=Path("bench-out/query.json"))
    args = parser.parse_args()
    n_blocks = args.blocks or (100_000 if args.quick else 1_000_000)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        home = make_home(Path(tmp) / "home", n_blocks, n_singers=60, front_end=FrontEndConfig(input=args.input))
        setup_s = time.perf_counter() - t0
        song = write_song(Path(tmp) / "query.mp3", args.seconds)
        cfg = FeatureConfig()
        front = LogMel(cfg)
        rows = []
        with QueryEngine.open(home) as engine:
            t0 = time.perf_counter()
            open_s = t0
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                signal = np.concatenate(list(iter_audio(song, sample_rate=cfg.sample_rate)))
                decode = time.perf_counter() - t0
                t0 = time.perf_counter()
                front(signal)
                features = time.perf_counter() - t0
                decision = engine.identify(song)
                t = decision.timings
                rows.append({"decode": decode, "features": features, "separate": t.get("separate", 0.0),
                             "embed": t["embed"], "search": t["search"], "vote": t["vote"],
                             "metadata": t["metadata"], "total_query": t["total"]})
            del open_s
        best = {key: min(r[key] for r in rows) for key in rows[0]}
    n_query_blocks = decision.n_blocks
    print(f"reference blocks: {n_blocks:,}  (setup {setup_s:.0f} s)   query: {args.seconds:.0f} s song, "
          f"{n_query_blocks} blocks, input {args.input}, best of {args.repeats}")
    print(f"{'stage':<12} {'seconds':>9} {'share':>7}")
    stages = ("decode", "features", "separate", "embed", "search", "vote", "metadata")
    for key in stages:
        print(f"{key:<12} {best[key]:>9.3f} {best[key] / best['total_query']:>7.1%}")
    print(f"{'total':<12} {best['total_query']:>9.3f}   (decode+features inside 'total' as one streamed stage)")
    summary = {"benchmark": "query", "input": args.input, "reference_blocks": n_blocks, "query_seconds": args.seconds,
               "query_blocks": n_query_blocks, "index": "flat", "best_seconds": best,
               "x_real_time": args.seconds / best["total_query"], "setup_seconds": setup_s}
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(summary, indent=2))
    print(f"wrote {args.json_out}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
