"""Benchmark: FAISS indexes of 1M and 10M singer-like block embeddings (build, memory, speed, agreement).

Reference sets shaped like a catalogue: S singers, each a von-Mises-Fisher-like cluster on the
unit sphere (a random centre; every song a centroid drawn around it; every 1-s block a noisy
point around its song), REF_BLOCKS_PER_SONG blocks per song, REF_SONGS_PER_SINGER songs per
singer, at the model's embedding dimension (singerid's default ModelConfig) and at 128.
Queries are held-out songs of the same singers (QUERY_BLOCKS_PER_SONG blocks each). Vectors are
generated chunk by chunk into a float32 file, never two copies in RAM.

The yardstick is exact search computed block by block over the file (float32 FAISS flat search
per 1M-row block, merged; as faiss.contrib.exhaustive_search.knn_ground_truth). Each index type
then runs in its own process (so its peak RSS is its own): build time, peak RSS (VmHWM, and the
largest anonymous RSS sampled every 50 ms, which leaves out the page cache of mapped files),
bytes per vector (on disk, and RAM after loading), queries/s in batches of 240 blocks (one
4-minute song), recall@11, and block- and song-decision agreement with exact search
(singerid.decision's vote functions), for a sweep of nprobe (IVF) or efSearch (HNSW). Then
build-index's own tuning (singerid.index.tuning) chooses a setting from held-out REFERENCE songs
alone, and that setting is scored on the query songs, which the tuning never saw: the "tuned" row
shows whether a setting chosen on the collection itself keeps >= 99 % of new songs' decisions.

Prints a table and writes JSON; the last stdout line is the JSON summary.

Usage: python scripts/bench_scale.py [--quick] [--sizes 1M,10M] [--dims model,128]
           [--types flat,ivf-flat,ivf-pq,hnsw,ivf-flat-disk,ivf-pq-disk] [--workdir DIR] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle OpenMP threads must not steal the other core

import faiss  # noqa: E402
import numpy as np  # noqa: E402

from singerid.config import ModelConfig  # noqa: E402
from singerid.constants import K_NEIGHBOURS  # noqa: E402
from singerid.index import ondisk  # noqa: E402
from singerid.index.choice import choose_index_key, make_spec, part_rows  # noqa: E402
from singerid.index import tuning  # noqa: E402
from singerid.index.tuning import exact_neighbours  # noqa: E402
from singerid.index.vectors import VectorIndex  # noqa: E402

REF_BLOCKS_PER_SONG = 240  # a 4-minute reference song
REF_SONGS_PER_SINGER = 20  # so S = n / 4,800 singers: 208 at 1M, 2,083 at 10M
QUERY_BLOCKS_PER_SONG = 240  # held-out whole songs (4 minutes), as `singerid query` sees them
# song centroid = centre + SONG_SPREAD x N(0, I/d) (album and production move a voice); block = song
# centroid + BLOCK_NOISE x N(0, I/d); both x (d / 32) ** DIM_EXPONENT, because random centres lie
# further apart in more dimensions. Tuned at 1M (208 singers) so that exact search decides about
# 1 block in 3 and 87-96 % of 40-block songs correctly (d=32: 0.34 / 0.87; d=128: 0.34 / 0.96):
# hard enough that approximate search can change decisions.
SONG_SPREAD = 1.1
BLOCK_NOISE = 1.0
DIM_EXPONENT = 0.27
QUERY_BATCH = 240  # blocks per search call: one 4-minute song, as `singerid query` searches
GEN_CHUNK_SINGERS = 64  # singers generated per chunk
READ_CHUNK_ROWS = 1 << 20  # rows per ground-truth block and per file read
SWEEP = {"ivf": (1, 2, 4, 8, 16, 32, 64, 128, 256, 512), "hnsw": (16, 32, 64, 128, 256, 512)}
SWEEP_STOP_SECONDS = 240  # a sweep stops after a setting whose pass over the queries took longer than this
TYPES = ("flat", "ivf-flat", "ivf-pq", "hnsw", "ivf-flat-disk", "ivf-pq-disk")
HNSW_MAX_FLOATS = 10_000_000 * 32  # n x d: beyond, the graph takes hours to build on 2 cores (10M x 128: skipped)
ONDISK_BUDGET_BYTES = 1024**3  # on-disk builds fill parts that fit 1 GiB, as `build-index --memory-budget 1G`


# --- data -------------------------------------------------------------------------------------
def generate(folder: Path, n_ref: int, d: int, n_query_songs: int, seed: int, singers: int | None = None) -> dict:
    """Write ref.f32 (n, d), ref_labels.npy, queries.npy, query_labels.npy, query_songs.npy; return meta.

    ``singers`` defaults to n / (REF_BLOCKS_PER_SONG x REF_SONGS_PER_SINGER); fewer singers means
    more songs each (the task stays as hard as at 1M instead of crowding the sphere).
    """
    folder.mkdir(parents=True, exist_ok=True)
    singers = singers or max(2, n_ref // (REF_BLOCKS_PER_SONG * REF_SONGS_PER_SINGER))
    blocks_per_singer = n_ref // singers // REF_BLOCKS_PER_SONG * REF_BLOCKS_PER_SONG  # whole songs
    rng = np.random.default_rng(seed)
    centres = unit(rng.standard_normal((singers, d), dtype=np.float32))
    labels = np.empty(n_ref, dtype=np.int32)
    written = 0
    with open(folder / "ref.f32", "wb") as fh:
        for first in range(0, singers, GEN_CHUNK_SINGERS):
            chunk_rng = np.random.default_rng([seed, first])
            who = np.arange(first, min(singers, first + GEN_CHUNK_SINGERS))
            rows = np.repeat(who, blocks_per_singer)
            if who[-1] == singers - 1:  # the last singer takes the remainder so that n is exact
                rows = np.concatenate([rows, np.full(n_ref - written - len(rows), who[-1])])
            blocks = songs_of(centres, rows, REF_BLOCKS_PER_SONG, d, chunk_rng)
            assert blocks.dtype == np.float32
            fh.write(blocks.tobytes())
            labels[written:written + len(blocks)] = rows
            written += len(blocks)
    assert written == n_ref
    q_rng = np.random.default_rng([seed, 10**9])
    q_singers = q_rng.integers(0, singers, n_query_songs)
    q_labels = np.repeat(q_singers, QUERY_BLOCKS_PER_SONG)
    queries = songs_of(centres, q_labels, QUERY_BLOCKS_PER_SONG, d, q_rng)
    np.save(folder / "ref_labels.npy", labels)
    np.save(folder / "queries.npy", queries)
    np.save(folder / "query_labels.npy", q_labels.astype(np.int32))
    np.save(folder / "query_songs.npy", np.repeat(np.arange(n_query_songs), QUERY_BLOCKS_PER_SONG))
    meta = {"n": n_ref, "d": d, "singers": singers, "query_songs": n_query_songs, "seed": seed,
            "song_spread": SONG_SPREAD, "block_noise": BLOCK_NOISE, "dim_exponent": DIM_EXPONENT}
    (folder / "meta.json").write_text(json.dumps(meta))
    return meta


def songs_of(centres: np.ndarray, block_singers: np.ndarray, blocks_per_song: int, d: int,
             rng: np.random.Generator) -> np.ndarray:
    """float32 (len(block_singers), d) unit blocks; consecutive runs of blocks_per_song share a song."""
    n = len(block_singers)
    song_of_block = np.arange(n) // blocks_per_song
    first_blocks = np.arange(0, n, blocks_per_song)
    scale = (d / 32) ** DIM_EXPONENT / np.sqrt(d)
    spread, noise = np.float32(SONG_SPREAD * scale), np.float32(BLOCK_NOISE * scale)  # float32 keeps arrays float32
    song_centres = unit(centres[block_singers[first_blocks]]
                        + spread * rng.standard_normal((len(first_blocks), d), dtype=np.float32))
    return unit(song_centres[song_of_block] + noise * rng.standard_normal((n, d), dtype=np.float32))


def unit(a: np.ndarray) -> np.ndarray:
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    return a


class FileRows:
    """The (n, d) float32 rows of a raw file, read with plain reads (no memory map, so RSS is honest)."""

    def __init__(self, path: Path, n: int, d: int) -> None:
        self.path, self.shape, self.dtype, self.ndim = path, (n, d), np.dtype(np.float32), 2

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key):
        n, d = self.shape
        if isinstance(key, slice):
            start, stop, _ = key.indices(n)
            return np.fromfile(self.path, dtype=np.float32, count=(stop - start) * d,
                               offset=4 * d * start).reshape(-1, d)
        rows = np.asarray(key)
        order = np.argsort(rows, kind="stable")
        out = np.empty((len(rows), d), dtype=np.float32)
        for start in range(0, n, READ_CHUNK_ROWS):  # one sequential pass, keeping the rows asked for
            lo, hi = np.searchsorted(rows[order], [start, start + READ_CHUNK_ROWS])
            if hi > lo:
                out[order[lo:hi]] = self[start:start + READ_CHUNK_ROWS][rows[order[lo:hi]] - start]
        return out


def ground_truth(folder: Path, meta: dict) -> dict:
    """Exact top-k of every query block, chunk by chunk over the reference file (singerid's flat search)."""
    rows = FileRows(folder / "ref.f32", meta["n"], meta["d"])
    queries = np.load(folder / "queries.npy")
    started = time.perf_counter()
    sims, ids, _ = exact_neighbours(queries, rows, np.arange(meta["n"]), K_NEIGHBOURS, batch_size=len(queries))
    seconds = time.perf_counter() - started
    np.save(folder / "truth_sims.npy", sims)
    np.save(folder / "truth_ids.npy", ids)
    return {"seconds": seconds, "qps": len(queries) / seconds}


# --- one index type: built in one process, loaded and searched in another ------------------------
def build_worker(folder: Path, index_type: str, threads: int) -> dict:
    """Build and save ``index_type``; its own process, so VmHWM is the build's peak."""
    faiss.omp_set_num_threads(threads)
    meta = json.loads((folder / "meta.json").read_text())
    n, d = meta["n"], meta["d"]
    sampler = AnonSampler()
    spec = index_spec(index_type, n, d)
    path = folder / f"index-{index_type}.faiss"
    started = time.perf_counter()
    index = VectorIndex.build(spec, FileRows(folder / "ref.f32", n, d), np.arange(n),
                              data_path=ondisk.data_path_for(path) if spec.on_disk else None,
                              part_rows=part_rows(spec, ONDISK_BUDGET_BYTES))
    build_seconds = time.perf_counter() - started
    index.save(path)
    file_bytes = path.stat().st_size + (ondisk.data_path_for(path).stat().st_size if spec.on_disk else 0)
    return {"type": index_type, "key": spec.factory_key, "n": n, "d": d, "build_seconds": build_seconds,
            "build_peak_rss_mib": rss_kib("VmHWM") / 1024, "build_peak_anon_mib": sampler.stop() / 1024,
            "file_bytes_per_vector": file_bytes / n}


def search_worker(folder: Path, index_type: str, threads: int, quick: bool) -> dict:
    """Load the saved index (RAM it takes = RSS growth) and sweep its search setting against the truth."""
    faiss.omp_set_num_threads(threads)
    baseline = rss_kib("VmRSS")  # first, before any other allocation could leave reusable heap behind
    index = VectorIndex.load(folder / f"index-{index_type}.faiss")
    loaded = rss_kib("VmRSS")
    spec = index.spec
    meta = json.loads((folder / "meta.json").read_text())
    n, singers = meta["n"], meta["singers"]
    queries, labels = np.load(folder / "queries.npy"), np.load(folder / "ref_labels.npy")
    songs, q_labels = np.load(folder / "query_songs.npy"), np.load(folder / "query_labels.npy")
    truth_sims, truth_ids = np.load(folder / "truth_sims.npy"), np.load(folder / "truth_ids.npy")
    exact = decide(labels[truth_ids], truth_sims, songs, singers)
    if spec.index_type == "flat":  # exact: one setting, on a subset (a full pass is the ground truth)
        settings, subset = [None], slice(0, min(len(queries), (4 if quick else 20) * QUERY_BATCH))
    else:
        settings = [s for s in SWEEP["hnsw" if spec.index_type == "hnsw" else "ivf"]
                    if spec.index_type == "hnsw" or s <= spec.nlist]
        subset = slice(None)
    q, picked = queries[subset], np.unique(songs[subset])

    def measure(setting: int | None) -> dict:
        kwargs = {} if setting is None else {"ef_search" if spec.index_type == "hnsw" else "nprobe": setting}
        found_sims = np.empty((len(q), K_NEIGHBOURS), np.float32)
        found_ids = np.empty((len(q), K_NEIGHBOURS), np.int64)
        started = time.perf_counter()
        for s in range(0, len(q), QUERY_BATCH):
            found_sims[s:s + QUERY_BATCH], found_ids[s:s + QUERY_BATCH] = index.search(
                q[s:s + QUERY_BATCH], K_NEIGHBOURS, **kwargs)
        seconds = time.perf_counter() - started
        ours = decide(np.where(found_ids >= 0, labels[np.maximum(found_ids, 0)], -1), found_sims, songs[subset],
                      singers)
        recall = tuning.recall_at_k(found_ids, truth_ids[subset])
        return {"setting": setting, "qps": len(q) / seconds, "seconds_per_song240": seconds / len(q) * 240,
                "load_average": os.getloadavg()[0],  # the machine is shared: timings drift with it
                "recall_at_11": float(recall),
                "block_agreement": float(np.mean(ours["blocks"] == exact["blocks"][subset])),
                "song_agreement": float(np.mean(ours["songs"][picked] == exact["songs"][picked]))}

    sweep = []
    for setting in settings:
        sweep.append(measure(setting))
        agreeing = [p["song_agreement"] >= 0.99 for p in sweep]
        if agreeing[-2:] == [True, True] or sweep[-1]["seconds_per_song240"] * len(q) / 240 > SWEEP_STOP_SECONDS:
            break  # settled, or too slow to matter
    tuned = None
    if spec.index_type != "flat":  # build-index's tuning, on reference songs only; scored on the query songs
        started = time.perf_counter()
        ref_songs = np.arange(n) // REF_BLOCKS_PER_SONG
        chosen = tuning.tune_search(index, FileRows(folder / "ref.f32", n, meta["d"]), np.arange(n), ref_songs, labels)
        tuning_seconds = time.perf_counter() - started
        if chosen is not None:
            done = {p["setting"]: p for p in sweep}
            tuned = {"value": chosen.value, "reached_on_held_out": chosen.reached, "held_out_songs": chosen.n_songs,
                     "held_out_song_agreement": chosen.chosen.song_agreement, "stopped": chosen.stopped,
                     "tuning_seconds": tuning_seconds,
                     "test": done.get(chosen.value) or measure(chosen.value)}
    return {"ram_bytes_per_vector": max(0, loaded - baseline) * 1024 / n, "search_peak_rss_mib": rss_kib("VmHWM") / 1024,
            "exact_block_accuracy": float(np.mean(exact["blocks"] == q_labels)),
            "exact_song_accuracy": float(np.mean(exact["songs"] == q_labels[::QUERY_BLOCKS_PER_SONG])),
            "sweep": sweep, "tuned": tuned}


def index_spec(index_type: str, n: int, d: int):
    """``ivf-pq-disk`` = ivf-pq with its lists on disk; the rest are singerid's types with default parameters."""
    return make_spec(index_type.removesuffix("-disk"), dim=d, n_vectors=n, on_disk=index_type.endswith("-disk"))


def decide(neighbour_labels: np.ndarray, sims: np.ndarray, songs: np.ndarray, singers: int) -> dict:
    """Block and song decisions with build-index's tuning rule (singerid.decision's, as `query` decides)."""
    decided = tuning.decide(neighbour_labels.astype(np.int64), sims, songs, K_NEIGHBOURS, singers)
    return {"blocks": decided.blocks, "songs": decided.songs}


def rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


class AnonSampler:
    """The largest RssAnon seen, sampled every 50 ms (VmHWM also counts mapped file pages)."""

    def __init__(self) -> None:
        self.peak, self._stop = 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, rss_kib("RssAnon"))

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return max(self.peak, rss_kib("RssAnon"))


# --- driver ------------------------------------------------------------------------------------
def parse_count(text: str) -> int:
    scale = {"K": 10**3, "M": 10**6, "G": 10**9}
    return int(float(text[:-1]) * scale[text[-1].upper()]) if text[-1].upper() in scale else int(text)


def run_worker(folder: Path, index_type: str, threads: int, quick: bool) -> dict:
    """Build, then load and search, each in a fresh process; the two results merged."""
    result: dict = {}
    for stage in ("build", "search"):
        cmd = [sys.executable, __file__, "--worker", f"{stage}:{index_type}", "--workdir", str(folder),
               "--threads", str(threads)]
        subprocess.run(cmd + (["--quick"] if quick else []), check=True)
        result.update(json.loads((folder / f"result-{stage}-{index_type}.json").read_text()))
    return result


def best_setting(result: dict) -> dict:
    """The cheapest sweep point with >= 99 % song agreement (or the most agreeing one)."""
    ok = [p for p in result["sweep"] if p["song_agreement"] >= 0.99]
    return ok[0] if ok else max(result["sweep"], key=lambda p: p["song_agreement"])


def print_tuned(rows: list[dict]) -> None:
    """build-index's tuned setting per index: chosen on held-out reference songs, scored on the query songs."""
    tuned = [r for r in rows if r.get("tuned")]
    if not tuned:
        return
    print(f"\n{'n':>11} {'d':>4} {'type':>13} | tuned on {'songs':>5} {'agree':>6} {'tuning s':>8} | "
          f"{'setting':>7} {'q/s':>9} {'s/song':>7} {'recall':>6} {'block=':>6} {'song=':>6} (query songs)")
    for r in tuned:
        t, p = r["tuned"], r["tuned"]["test"]
        print(f"{r['n']:>11,} {r['d']:>4} {r['type']:>13} | {'':>8} {t['held_out_songs']:>5} "
              f"{t['held_out_song_agreement']:>6.3f} {t['tuning_seconds']:>8.1f} | {t['value']:>7} {p['qps']:>9,.0f} "
              f"{p['seconds_per_song240']:>7.3f} {p['recall_at_11']:>6.3f} {p['block_agreement']:>6.3f} "
              f"{p['song_agreement']:>6.3f}")


def print_table(rows: list[dict]) -> None:
    print(f"\n{'n':>11} {'d':>4} {'type':>13} {'key':>16} {'build s':>8} {'peak MiB':>9} {'anon MiB':>9} "
          f"{'B/v disk':>8} {'B/v RAM':>7} | {'setting':>7} {'q/s':>9} {'s/song':>7} {'recall':>6} "
          f"{'block=':>6} {'song=':>6}")
    for r in rows:
        for p in r["sweep"]:
            print(f"{r['n']:>11,} {r['d']:>4} {r['type']:>13} {r['key']:>16} {r['build_seconds']:>8.1f} "
                  f"{r['build_peak_rss_mib']:>9,.0f} {r['build_peak_anon_mib']:>9,.0f} "
                  f"{r['file_bytes_per_vector']:>8.1f} {r['ram_bytes_per_vector']:>7.1f} | "
                  f"{str(p['setting'] or '-'):>7} {p['qps']:>9,.0f} {p['seconds_per_song240']:>7.3f} "
                  f"{p['recall_at_11']:>6.3f} {p['block_agreement']:>6.3f} {p['song_agreement']:>6.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100k vectors at the model's d, 3 types (< 2 minutes)")
    parser.add_argument("--sizes", default="1M,10M", help="reference set sizes, e.g. 1M,10M")
    parser.add_argument("--dims", default="model,128", help="dimensions; 'model' = singerid's embedding size")
    parser.add_argument("--types", default=",".join(TYPES), help=f"index types, from {', '.join(TYPES)}")
    parser.add_argument("--query-songs", type=int, default=200, help="held-out query songs (x 240 blocks)")
    parser.add_argument("--singers", type=int, default=None,
                        help="singers in the reference set [default: n / 4,800, i.e. 20 songs each]")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--workdir", type=Path, default=None, help="where vectors and indexes go [a temp dir]")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--json-out", type=Path, default=Path("bench-out/scale.json"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        stage, index_type = args.worker.split(":")
        result = (build_worker(args.workdir, index_type, args.threads) if stage == "build" else
                  search_worker(args.workdir, index_type, args.threads, args.quick))
        (args.workdir / f"result-{stage}-{index_type}.json").write_text(json.dumps(result))
        return
    model_dim = ModelConfig().embedding_dim
    if args.quick:
        sizes, dims, types, query_songs = [100_000], [model_dim], ["flat", "ivf-flat", "ivf-pq-disk"], 20
    else:
        sizes = [parse_count(s) for s in args.sizes.split(",")]
        dims = [model_dim if s == "model" else int(s) for s in args.dims.split(",")]
        types, query_songs = args.types.split(","), args.query_songs
    root = args.workdir or Path(tempfile.mkdtemp(prefix="bench-scale-"))
    results, truths = [], {}
    try:
        for n in sizes:
            for d in dims:
                folder = root / (f"n{n}-d{d}" + (f"-s{args.singers}" if args.singers else ""))
                wanted = {"n": n, "d": d, "query_songs": query_songs, "seed": args.seed, "song_spread": SONG_SPREAD,
                          "block_noise": BLOCK_NOISE, "dim_exponent": DIM_EXPONENT}
                if args.singers:
                    wanted["singers"] = args.singers
                if (folder / "truth.json").is_file() and reusable(folder, wanted):  # --keep left it
                    meta = json.loads((folder / "meta.json").read_text())
                    truths[f"n{n}_d{d}"] = json.loads((folder / "truth.json").read_text())
                    print(f"reusing {n:,} x {d} and its ground truth from {folder}", flush=True)
                else:
                    started = time.perf_counter()
                    meta = generate(folder, n, d, query_songs, args.seed, args.singers)
                    print(f"generated {n:,} x {d} ({meta['singers']:,} singers) in "
                          f"{time.perf_counter() - started:.0f} s", flush=True)
                    truths[f"n{n}_d{d}"] = ground_truth(folder, meta)
                    (folder / "truth.json").write_text(json.dumps(truths[f"n{n}_d{d}"]))
                    print(f"exact ground truth: {truths[f'n{n}_d{d}']['seconds']:.0f} s", flush=True)
                for index_type in types:
                    if index_type == "hnsw" and n * d > HNSW_MAX_FLOATS:
                        print(f"skipping hnsw at {n:,} x {d}: hours to build on this CPU")
                        continue
                    result = run_worker(folder, index_type, args.threads, args.quick)
                    results.append(result)
                    print_table([result])
                    print_tuned([result])
                    sys.stdout.flush()
                    write_json(args.json_out, args, model_dim, sizes, dims, truths, results)  # so far
                    for leftover in folder.glob("index-*"):
                        leftover.unlink()
                if not args.keep:
                    shutil.rmtree(folder)
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(root, ignore_errors=True)
    print("\nall results:")
    print_table(results)
    print_tuned(results)
    summary = write_json(args.json_out, args, model_dim, sizes, dims, truths, results)
    print(f"\nwrote {args.json_out}")
    print(json.dumps(summary))


def reusable(folder: Path, wanted: dict) -> bool:
    meta = json.loads((folder / "meta.json").read_text())
    return all(meta.get(key) == value for key, value in wanted.items())


def write_json(path: Path, args: argparse.Namespace, model_dim: int, sizes: list[int], dims: list[int],
               truths: dict, results: list[dict]) -> dict:
    """Write the results so far (a long run killed half-way still leaves them); returns the summary."""
    summary = {"quick": args.quick, "threads": args.threads, "model_dim": model_dim, "ground_truth": truths,
               "auto_choice_8G": {f"n{n}_d{d}": choose_index_key(n, d, 8 * 1024**3).label
                                  for n in sizes for d in dims},
               "results": {f"n{r['n']}_d{r['d']}_{r['type']}": {
                   "key": r["key"], "build_seconds": round(r["build_seconds"], 1),
                   "build_peak_rss_mib": round(r["build_peak_rss_mib"]),
                   "build_peak_anon_mib": round(r["build_peak_anon_mib"]),
                   "search_peak_rss_mib": round(r["search_peak_rss_mib"]),
                   "file_bytes_per_vector": round(r["file_bytes_per_vector"], 1),
                   "ram_bytes_per_vector": round(r["ram_bytes_per_vector"], 1),
                   "exact_song_accuracy": round(r["exact_song_accuracy"], 3),
                   "at_99pct_song_agreement": {k: (round(v, 4) if isinstance(v, float) else v)
                                               for k, v in best_setting(r).items()},
                   "tuned": None if not r.get("tuned") else {
                       "value": r["tuned"]["value"], "held_out_song_agreement": r["tuned"]["held_out_song_agreement"],
                       "tuning_seconds": round(r["tuned"]["tuning_seconds"], 1),
                       "query_song_agreement": r["tuned"]["test"]["song_agreement"],
                       "query_seconds_per_song240": round(r["tuned"]["test"]["seconds_per_song240"], 4)}}
                   for r in results}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"summary": summary, "results": results}, indent=2))
    return summary


if __name__ == "__main__":
    main()
