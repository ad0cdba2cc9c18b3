"""Benchmark: exact and approximate k-NN search of block embeddings (FAISS vs numpy vs torch).

(a) Exact search of N unit vectors (d=32, the real embedding size, and d=128 for the trend):
    FAISS IndexFlatIP (singerid.index.vectors.VectorIndex) vs the same search written as a numpy
    matrix product + argpartition and as a torch matmul + topk, in query batches whose similarity
    tile stays under 256 MB. Reports queries/s and the fraction of this machine's float32 GEMM
    rate, measured in the same run with a large numpy matmul (2 n^3 flops). "shipped" is a plain
    IndexFlatIP under faiss's own BLAS threshold (faiss-cpu 1.15.1: 128,000 queries), which
    VectorIndex lowers to 20 (see vectors.BLAS_QUERY_THRESHOLD).
(b) Approximate types (flat-fp16, ivf-pq, hnsw) on clustered vectors shaped like singer embeddings
    (60 singers, each a mixture of song centroids, blocks = centroid + noise, normalised): build
    time, bytes per vector, queries/s, recall@11 against the exact blockwise ground truth
    (vectors.exact_search), and agreement of the K=11 majority vote with the exact vote, per block
    and per song (held-out songs of the same singers, as in the paper's test split).
(c) The roofline of exact search for one song: Q = 240 query blocks (a 4-minute song) against
    N = 1M references, d = 32 and 128, against two rooflines measured in the same run, best of
    interleaved repeats: the machine's float32 GEMM peak (square 2048^3 numpy matmul) and a
    numpy sgemm of the same shapes (240 x d times d x N, in 4,096-row blocks, no top-k).
    "before" is FAISS's own threaded flat search (IndexFlatIP with vectors.BLAS_QUERY_THRESHOLD,
    what VectorIndex ran until the sharded search); "after" is VectorIndex.search today (one
    single-threaded FAISS knn per core over its own database shard, vectors._search_shards).
Prints tables and writes JSON; the last stdout line is the JSON summary.

Usage: python scripts/bench_index.py [--quick] [--sections exact,approximate,roofline]
           [--json-out bench-out/index.json] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

# FAISS, torch and BLAS each keep an OpenMP pool; idle threads that spin steal the cores the next
# library needs and distort its timing. Must be set before the libraries load.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import faiss  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from singerid.constants import K_NEIGHBOURS  # noqa: E402
from singerid.index.choice import IndexSpec, make_spec  # noqa: E402
from singerid.index.vectors import VectorIndex, blas_threshold, exact_search  # noqa: E402

SHIPPED_BLAS_THRESHOLD = faiss.cvar.distance_compute_blas_threshold  # read before anything changes it
TILE_BYTES = 256 * 1024**2  # numpy / torch similarity tile per query batch
SECONDS_PER_CASE = 1.0  # aim for about this much work per timed search (quick mode: half)


def unit(a: np.ndarray) -> np.ndarray:
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    return a


def random_unit(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    return unit(rng.standard_normal((n, d), dtype=np.float32))


def gemm_gflops(n: int, repeats: int) -> float:
    """float32 GEMM rate of this machine (numpy's BLAS, all threads allowed): best of ``repeats``."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n), dtype=np.float32), rng.standard_normal((n, n), dtype=np.float32)
    a @ b  # warm-up
    best = min(timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def numpy_search(q: np.ndarray, x: np.ndarray, k: int) -> np.ndarray:
    batch = max(1, TILE_BYTES // (4 * len(x)))
    out = np.empty((len(q), k), dtype=np.int64)
    for s in range(0, len(q), batch):
        sims = q[s:s + batch] @ x.T  # (batch, N) float32
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1)
        out[s:s + batch] = np.take_along_axis(top, order, axis=1)
    return out


def torch_search(q: torch.Tensor, x: torch.Tensor, k: int) -> np.ndarray:
    batch = max(1, TILE_BYTES // (4 * len(x)))
    out = []
    with torch.inference_mode():
        for s in range(0, len(q), batch):
            out.append(torch.topk(q[s:s + batch] @ x.T, k, dim=1).indices)
    return torch.cat(out).numpy()


def bench_exact(d: int, n: int, peak_gflops: float, budget_s: float, repeats: int, rng: np.random.Generator) -> dict:
    x = random_unit(n, d, rng)
    n_queries = int(np.clip(budget_s * peak_gflops * 1e9 / (2 * n * d) / 4, 32, 4096))
    q = random_unit(n_queries, d, rng)
    index = VectorIndex.build(IndexSpec("flat", d), x, np.arange(n))
    xt, qt = torch.from_numpy(x), torch.from_numpy(q)
    index.search(q[:8], K_NEIGHBOURS)  # warm-ups
    numpy_search(q[:8], x, K_NEIGHBOURS)
    torch_search(qt[:8], xt, K_NEIGHBOURS)
    plain = faiss.IndexFlatIP(d)  # FAISS as shipped: its own BLAS threshold (see vectors.BLAS_QUERY_THRESHOLD)
    plain.add(x)
    methods = {"faiss": lambda: index.search(q, K_NEIGHBOURS)[1],
               "numpy": lambda: numpy_search(q, x, K_NEIGHBOURS),
               "torch": lambda: torch_search(qt, xt, K_NEIGHBOURS),
               "faiss_shipped": lambda: plain.search(q, K_NEIGHBOURS)[1]}
    results: dict[str, np.ndarray] = {}
    seconds = dict.fromkeys(methods, float("inf"))
    for _ in range(repeats):  # interleaved, best of repeats: fair under background load
        for name, method in methods.items():
            start = time.perf_counter()
            results[name] = method()
            seconds[name] = min(seconds[name], time.perf_counter() - start)
    flops = 2.0 * n_queries * n * d
    row = {"d": d, "n": n, "queries": n_queries}
    for name, sec in seconds.items():
        row[f"{name}_qps"] = n_queries / sec
        row[f"{name}_roofline"] = flops / sec / 1e9 / peak_gflops
    row["faiss_over_numpy"] = seconds["numpy"] / seconds["faiss"]
    row["faiss_over_torch"] = seconds["torch"] / seconds["faiss"]
    row["faiss_over_shipped"] = seconds["faiss_shipped"] / seconds["faiss"]
    row["top1_agreement"] = float(np.mean((results["faiss"][:, 0] == results["numpy"][:, 0])
                                          & (results["faiss"][:, 0] == results["torch"][:, 0])))
    return row


def singer_like(n_ref: int, d: int, rng: np.random.Generator, *, singers: int = 60, blocks_per_song: int = 240,
                test_songs_per_singer: int = 1, song_spread: float = 0.11, block_noise: float = 0.19):
    """Reference and held-out query blocks: singer centre -> song centroids -> noisy unit blocks."""
    songs_per_singer = max(1, n_ref // (singers * blocks_per_song))
    centres = random_unit(singers, d, rng)

    def songs(count: int):
        labels = np.repeat(np.arange(singers), count)
        centroids = unit(centres[labels] + song_spread * rng.standard_normal((len(labels), d), dtype=np.float32))
        song_of_block = np.repeat(np.arange(len(labels)), blocks_per_song)
        blocks = unit(centroids[song_of_block] + block_noise * rng.standard_normal((len(song_of_block), d),
                                                                                    dtype=np.float32))
        return blocks, labels[song_of_block], song_of_block

    ref, ref_labels, _ = songs(songs_per_singer)
    query, query_labels, query_songs = songs(test_songs_per_singer)
    return ref, ref_labels, query, query_labels, query_songs


def vote(neighbour_labels: np.ndarray, sims: np.ndarray, n_labels: int) -> np.ndarray:
    """K-NN majority per row; ties broken by the larger summed similarity (the pipeline's rule)."""
    rows = np.repeat(np.arange(len(neighbour_labels)), neighbour_labels.shape[1])
    valid = neighbour_labels.ravel() >= 0
    votes = np.zeros((len(neighbour_labels), n_labels))
    score = np.zeros_like(votes)
    np.add.at(votes, (rows[valid], neighbour_labels.ravel()[valid]), 1.0)
    np.add.at(score, (rows[valid], neighbour_labels.ravel()[valid]), sims.ravel()[valid])
    k = neighbour_labels.shape[1]
    return np.argmax(votes + (score + k) / (2 * k + 1), axis=1)  # (score + k) / (2k + 1) lies in [0, 1)


def song_vote(block_winners: np.ndarray, song_of_block: np.ndarray, n_labels: int) -> np.ndarray:
    counts = np.zeros((song_of_block.max() + 1, n_labels))
    np.add.at(counts, (song_of_block, block_winners), 1.0)
    return np.argmax(counts, axis=1)


def bench_approximate(n_ref: int, d: int, rng: np.random.Generator, test_songs: int) -> dict:
    ref, ref_labels, query, query_labels, query_songs = singer_like(n_ref, d, rng, test_songs_per_singer=test_songs)
    n_labels = int(ref_labels.max()) + 1
    start = time.perf_counter()
    true_sims, true_ids = exact_search(query, ref, K_NEIGHBOURS)
    truth_seconds = time.perf_counter() - start
    exact_blocks = vote(ref_labels[true_ids], true_sims, n_labels)
    exact_songs = song_vote(exact_blocks, query_songs, n_labels)
    song_labels = query_labels[np.unique(query_songs, return_index=True)[1]]
    out = {"n_ref": len(ref), "n_query_blocks": len(query), "n_query_songs": int(query_songs.max() + 1),
           "ground_truth_seconds": truth_seconds,
           "exact_block_accuracy": float(np.mean(exact_blocks == query_labels)),
           "exact_song_accuracy": float(np.mean(exact_songs == song_labels)), "types": {}}
    for index_type in ("flat", "flat-fp16", "ivf-flat", "ivf-pq", "hnsw"):
        spec = make_spec(index_type, dim=d, n_vectors=len(ref))
        build = time.perf_counter()
        index = VectorIndex.build(spec, ref, np.arange(len(ref)))
        build = time.perf_counter() - build
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "i.faiss"
            index.save(path)
            size = path.stat().st_size
        search = time.perf_counter()
        sims, ids = index.search(query, K_NEIGHBOURS)
        search = time.perf_counter() - search
        blocks = vote(np.where(ids >= 0, ref_labels[np.maximum(ids, 0)], -1), sims, n_labels)
        songs = song_vote(blocks, query_songs, n_labels)
        recall = np.mean([len(np.intersect1d(a, b)) for a, b in zip(ids, true_ids)]) / K_NEIGHBOURS
        out["types"][index_type] = {
            "key": spec.factory_key, "build_seconds": build, "bytes_per_vector": size / len(ref),
            "qps": len(query) / search, "recall_at_11": float(recall),
            "block_vote_agreement": float(np.mean(blocks == exact_blocks)),
            "song_vote_agreement": float(np.mean(songs == exact_songs)),
            "block_accuracy": float(np.mean(blocks == query_labels)),
        }
    return out


ROOFLINE_QUERIES = 240  # one 4-minute song
ROOFLINE_REFERENCES = 1_000_000
SAME_SHAPE_BLOCK_ROWS = 4096  # database rows per numpy sgemm in the same-shape roofline


def bench_roofline(d: int, rng: np.random.Generator, repeats: int) -> dict:
    """GFLOP/s of exact search (before / after) and of the two GEMM rooflines, best of ``repeats``."""
    n, nq = ROOFLINE_REFERENCES, ROOFLINE_QUERIES
    x, q = random_unit(n, d, rng), random_unit(nq, d, rng)
    square = rng.standard_normal((2048, 2048), dtype=np.float32)
    index = VectorIndex.build(IndexSpec("flat", d), x, np.arange(n))
    plain = faiss.IndexFlatIP(d)
    plain.add(x)
    tile = np.empty((nq, SAME_SHAPE_BLOCK_ROWS), dtype=np.float32)

    def same_shape_gemm() -> None:
        for s in range(0, n, SAME_SHAPE_BLOCK_ROWS):
            block = x[s:s + SAME_SHAPE_BLOCK_ROWS]
            np.matmul(q, block.T, out=tile[:, :len(block)])

    def before() -> None:
        with blas_threshold():
            plain.search(q, K_NEIGHBOURS)

    flops = {"peak": 2.0 * 2048**3, "same_shape_gemm": 2.0 * nq * n * d, "before": 2.0 * nq * n * d,
             "after": 2.0 * nq * n * d}
    methods = {"peak": lambda: square @ square, "same_shape_gemm": same_shape_gemm, "before": before,
               "after": lambda: index.search(q, K_NEIGHBOURS)}
    for method in methods.values():
        method()  # warm-up
    seconds = dict.fromkeys(methods, float("inf"))
    for _ in range(repeats):  # interleaved: the machine is shared, its speed drifts
        for name, method in methods.items():
            seconds[name] = min(seconds[name], timed(method))
    gflops = {name: flops[name] / seconds[name] / 1e9 for name in methods}
    row = {"d": d, "n": n, "queries": nq, **{f"{name}_gflops": rate for name, rate in gflops.items()}}
    for name in ("before", "after"):
        row[f"{name}_of_peak"] = gflops[name] / gflops["peak"]
        row[f"{name}_of_same_shape"] = gflops[name] / gflops["same_shape_gemm"]
        row[f"{name}_seconds_per_song"] = seconds[name]
    row["same_shape_of_peak"] = gflops["same_shape_gemm"] / gflops["peak"]
    return row


def print_roofline(rows: list[dict]) -> None:
    print(f"\n(c) exact search of one song ({ROOFLINE_QUERIES} blocks) vs {ROOFLINE_REFERENCES:,} references, "
          f"K={K_NEIGHBOURS}, GFLOP/s (best of interleaved repeats)")
    print(f"{'d':>4} | {'peak':>6} {'same-shape':>10} | {'before':>7} {'after':>7} | {'before/peak':>11} "
          f"{'after/peak':>10} | {'before/same':>11} {'after/same':>10} | {'s/song before':>13} {'after':>6}")
    for r in rows:
        print(f"{r['d']:>4} | {r['peak_gflops']:>6.0f} {r['same_shape_gemm_gflops']:>10.0f} | "
              f"{r['before_gflops']:>7.0f} {r['after_gflops']:>7.0f} | {r['before_of_peak']:>11.0%} "
              f"{r['after_of_peak']:>10.0%} | {r['before_of_same_shape']:>11.0%} {r['after_of_same_shape']:>10.0%} | "
              f"{r['before_seconds_per_song']:>13.3f} {r['after_seconds_per_song']:>6.3f}")


def print_exact(rows: list[dict], peak: float) -> None:
    print(f"\n(a) exact search, K={K_NEIGHBOURS}; machine float32 GEMM = {peak:.1f} GFLOP/s; 'shipped' = "
          f"IndexFlatIP with faiss's own BLAS threshold ({SHIPPED_BLAS_THRESHOLD:,} queries)")
    print(f"{'d':>4} {'N':>9} {'queries':>7} | {'faiss q/s':>10} {'numpy q/s':>10} {'torch q/s':>10} {'shipped':>9} | "
          f"{'faiss/np':>8} {'faiss/pt':>8} {'/shipped':>8} | {'roofline faiss/np/pt':>22} | top1=")
    for r in rows:
        print(f"{r['d']:>4} {r['n']:>9,} {r['queries']:>7} | {r['faiss_qps']:>10,.0f} {r['numpy_qps']:>10,.0f} "
              f"{r['torch_qps']:>10,.0f} {r['faiss_shipped_qps']:>9,.0f} | {r['faiss_over_numpy']:>7.2f}x "
              f"{r['faiss_over_torch']:>7.2f}x {r['faiss_over_shipped']:>7.2f}x | "
              f"{r['faiss_roofline']:>6.1%} {r['numpy_roofline']:>6.1%} {r['torch_roofline']:>6.1%} | "
              f"{r['top1_agreement']:.3f}")


def print_approximate(a: dict) -> None:
    print(f"\n(b) approximate indexes on singer-like data: {a['n_ref']:,} reference blocks, "
          f"{a['n_query_blocks']:,} query blocks of {a['n_query_songs']} held-out songs; exact vote accuracy "
          f"block {a['exact_block_accuracy']:.3f}, song {a['exact_song_accuracy']:.3f}")
    print(f"{'type':>10} {'faiss key':>16} {'build s':>8} {'B/vec':>7} {'q/s':>10} {'recall@11':>9} "
          f"{'vote=exact':>10} {'song=exact':>10}")
    for name, t in a["types"].items():
        print(f"{name:>10} {t['key']:>16} {t['build_seconds']:>8.2f} {t['bytes_per_vector']:>7.1f} {t['qps']:>10,.0f} "
              f"{t['recall_at_11']:>9.3f} {t['block_vote_agreement']:>10.3f} {t['song_vote_agreement']:>10.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer sizes and queries (under 2 minutes)")
    parser.add_argument("--json-out", type=Path, default=Path("bench-out/index.json"))
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for FAISS, torch and BLAS")
    parser.add_argument("--sections", default="exact,approximate,roofline",
                        help="which parts to run: exact, approximate, roofline (comma-separated)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from threadpoolctl import threadpool_limits  # scikit-learn's dependency; caps numpy's BLAS threads

    threadpool_limits(args.threads)
    faiss.omp_set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    sections = set(args.sections.split(","))
    budget = SECONDS_PER_CASE / (2 if args.quick else 1)
    peak = gemm_gflops(2048 if args.quick else 4096, 3)
    summary: dict = {"threads": args.threads, "quick": args.quick, "gemm_gflops": round(peak, 1)}
    exact, approx, roofline = [], {}, []
    if "exact" in sections:
        sizes = {32: (10_000, 100_000, 1_000_000),
                 128: (10_000, 100_000) if args.quick else (10_000, 100_000, 1_000_000)}
        exact = [bench_exact(d, n, peak, budget, 1 if args.quick else 3, rng) for d, ns in sizes.items() for n in ns]
        print_exact(exact, peak)
        summary["exact"] = {f"d{r['d']}_n{r['n']}": {key: round(r[key], 4) for key in (
            "faiss_qps", "numpy_qps", "torch_qps", "faiss_shipped_qps", "faiss_over_numpy", "faiss_over_torch",
            "faiss_over_shipped", "faiss_roofline", "numpy_roofline", "torch_roofline")} for r in exact}
    if "approximate" in sections:
        approx = bench_approximate(100_000 if args.quick else 800_000, 32, rng, 1 if args.quick else 2)
        print_approximate(approx)
        summary["approximate"] = {name: {key: round(t[key], 4) for key in (
            "recall_at_11", "block_vote_agreement", "song_vote_agreement", "bytes_per_vector", "qps",
            "build_seconds")} for name, t in approx["types"].items()}
    if "roofline" in sections:
        roofline = [bench_roofline(d, rng, 3 if args.quick else 7) for d in ((32,) if args.quick else (32, 128))]
        print_roofline(roofline)
        summary["roofline"] = {f"d{r['d']}": {key: round(value, 4) for key, value in r.items()
                                              if key not in ("d", "n", "queries")} for r in roofline}
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps({"summary": summary, "exact": exact, "approximate": approx,
                                         "roofline": roofline}, indent=2))
    print(f"\nwrote {args.json_out}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
