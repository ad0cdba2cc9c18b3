"""Benchmark: how singerid holds up against hostile input and a hostile environment.

One function per part, each returning a dict of figures; ``main`` runs the parts asked for,
prints a table and writes JSON (last stdout line = JSON summary).
  - fuzz: cases of random bytes, truncations and bit flips of real wav/flac/ogg/mp3, odd rates
    (1 Hz - 384 kHz) and channels (0-8), NaN / inf / 1e30 samples, long silence and odd names
    (non-UTF-8, newlines, terminal escapes, 240-byte names) through ``singerid check-audio``
    (the decode -> log-mel -> blocks path of query and embed-corpus) in one process: cases
    tried, internal errors, hangs (a case over the per-case timeout), ok / refused, slowest
    case, and the process's peak RSS.
  - kills: enrol and build-index killed with SIGKILL at their crash points (SINGERID_CRASH_AT;
    every point, and build-index also after 10 random delays; --quick: one point each), each
    rerun; kills, survived (info --check clean, nothing pending, index = store), lost and
    duplicated blocks, and the queries a loop answered / refused / got wrong throughout.
  - ingest: queries in a loop while `embed-corpus` adds 12 songs to an indexed home: answered,
    refused, wrong; whether the index holds the new songs afterwards without build-index.
  - index_hash: what verifying the index file's SHA-256 on every open costs at 1M vectors
    (flat, d=32 and d=128): seconds to hash vs seconds to load.

Usage: python scripts/bench_reliability.py [--quick] [--cases 1000] [--seed 0] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the fuzz strategies live beside the fuzz test


def fuzz_part(*, cases: int, seed: int) -> dict:
    """Run ``cases`` fuzz cases (the test's own hypothesis strategy, seeded) and count the outcomes."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed
    from test_fuzz import CASE_TIMEOUT_S, cases as case_strategy, make_case, run_case

    tally: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    internal: list[str] = []
    slowest = [0.0, ""]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="singerid-fuzz-") as tmp:

        @hypothesis_seed(seed)
        @settings(max_examples=cases, database=None, deadline=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(case_strategy())
        def one(case) -> None:  # noqa: ANN001
            folder = Path(tempfile.mkdtemp(dir=tmp))
            outcome = run_case(make_case(folder, *case), timeout_s=CASE_TIMEOUT_S)
            kinds[case[1].lower()] += 1
            if outcome.code == -1:
                tally["hangs"] += 1
            elif outcome.internal:
                tally["internal_errors"] += 1
                internal.append(outcome.stderr.strip()[-300:])
            else:
                tally["ok" if outcome.code == 0 else "refused"] += 1
            if outcome.seconds > slowest[0]:
                slowest[:] = [outcome.seconds, f".{case[1]} {len(case[2]):,} B"]

        one()
    tried = sum(tally.values())
    return {"cases": tried, "internal_errors": tally["internal_errors"], "hangs": tally["hangs"],
            "ok": tally["ok"], "refused": tally["refused"], "slowest_case_s": round(slowest[0], 2),
            "slowest_case": slowest[1], "seconds": round(time.perf_counter() - started, 1),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "extensions": dict(kinds.most_common()), "internal_error_samples": internal[:5]}


def _ready_home(tmp: Path):
    import torch
    from reliability import make_ready_home, right_answers

    torch.set_num_threads(1)
    home, tracks = make_ready_home(tmp)
    return home, tracks, right_answers(home, tracks)


def kills_part(*, quick: bool, seed: int) -> dict:
    """Kill enrol and build-index at their crash points (and build-index after random delays)."""
    import random

    from embed_corpus import write_song
    from reliability import QueryLoop, kill_command

    from singerid.pipeline.build_index import build_index
    from singerid.pipeline.manage import enrol

    started = time.perf_counter()
    rng = random.Random(seed)
    out = {}
    with tempfile.TemporaryDirectory(prefix="singerid-kills-") as tmp:
        home, _, queries = _ready_home(Path(tmp))
        voice = [write_song(Path(tmp) / "voice" / f"{i}.wav", singer=5, song_seed=9300 + i, seconds=5.0)
                 for i in range(4)]
        enrol_args = ["enrol", "Newcomer", *map(str, voice)]
        plans = {"enrol": (enrol_args, lambda h: enrol(h, "Newcomer", voice), (13,) if quick else range(1, 60),
                           True, ()),
                 "build-index": (["build-index"], build_index, (4,) if quick else range(1, 60), False,
                                 () if quick else tuple(round(rng.uniform(0.5, 6.0), 2) for _ in range(10)))}
        for name, (args, rerun, points, fresh, delays) in plans.items():
            with QueryLoop(home, *queries) as loop:
                tally = kill_command(home, Path(tmp) / name, args, rerun, points, loop=loop, fresh=fresh,
                                     delays_s=delays)
            out[f"{name}_kills"] = tally["kills"]
            out[f"{name}_survived"] = tally["survived"]
            out[f"{name}_crash_points"] = tally["points_in_command"]
            out[f"{name}_lost"] = tally["lost"]
            out[f"{name}_duplicated"] = tally["duplicated"]
            out[f"{name}_queries_answered"] = loop.answered
            out[f"{name}_queries_refused"] = loop.refused
            out[f"{name}_queries_wrong"] = loop.wrong
            out[f"{name}_problem_samples"] = tally["problems"][:3] + loop.errors[:3]
    out["seconds"] = round(time.perf_counter() - started, 1)
    return out


def ingest_part() -> dict:
    """Queries in a loop while embed-corpus adds songs to an indexed home."""
    from embed_corpus import write_song
    from reliability import QueryLoop, home_facts, run_crashing, singerid_cmd

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="singerid-ingest-") as tmp:
        home, _, queries = _ready_home(Path(tmp))
        data = Path(tmp) / "more"
        for s in range(4):
            for i in range(3):
                write_song(data / f"singer{s}" / f"extra{i}.wav", singer=s, song_seed=7000 + 10 * s + i, seconds=5.0)
        with QueryLoop(home, *queries) as loop:
            code = run_crashing(singerid_cmd("embed-corpus", str(data), "--home", str(home.root), "--dataset",
                                             "folder", "--split", "all"), None)
        facts = home_facts(home)
    return {"songs_added": 12, "exit_status": code, "queries_answered": loop.answered,
            "queries_refused": loop.refused, "queries_wrong": loop.wrong,
            "indexed_without_build_index": facts["index_equals_store"], "error_samples": loop.errors[:3],
            "seconds": round(time.perf_counter() - started, 1)}


def index_hash_part(*, n_vectors: int = 1_000_000) -> dict:
    """Seconds to SHA-256 a flat index file of ``n_vectors`` vs seconds to load it (d=32 and d=128)."""
    import faiss
    import numpy as np

    from singerid.index.files import sha256_file

    out = {}
    with tempfile.TemporaryDirectory(prefix="singerid-hash-") as tmp:
        for dim in (32, 128):
            x = np.random.default_rng(0).standard_normal((n_vectors, dim)).astype(np.float32)
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            index = faiss.IndexIDMap(faiss.IndexFlatIP(dim))
            index.add_with_ids(x, np.arange(n_vectors, dtype=np.int64))
            path = Path(tmp) / f"flat-{dim}.faiss"
            faiss.write_index(index, str(path))
            del index, x
            faiss.read_index(str(path))  # warm the page cache, as a second query would find it
            t0 = time.perf_counter()
            faiss.read_index(str(path))
            t1 = time.perf_counter()
            sha256_file(path)
            t2 = time.perf_counter()
            out[f"d{dim}_file_mib"] = round(path.stat().st_size / 2**20, 1)
            out[f"d{dim}_load_s"] = round(t1 - t0, 3)
            out[f"d{dim}_sha256_s"] = round(t2 - t1, 3)
            path.unlink()
    out["n_vectors"] = n_vectors
    return out


PARTS: dict[str, Callable[[argparse.Namespace], dict]] = {
    "fuzz": lambda args: fuzz_part(cases=args.cases, seed=args.seed),
    "kills": lambda args: kills_part(quick=args.quick, seed=args.seed),
    "ingest": lambda args: ingest_part(),
    "index_hash": lambda args: index_hash_part(),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a small run (under 3 minutes): 150 fuzz cases, one kill point per command")
    parser.add_argument("--cases", type=int, default=None, help="fuzz cases [1000; --quick 150]")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)}")
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args()
    args.cases = args.cases or (150 if args.quick else 1_000)
    results = {name: PARTS[name](args) for name in args.parts.split(",") if name}
    print(f"{'part':<10} {'figure':<30} {'value':>12}")
    for part, figures in results.items():
        for key, value in figures.items():
            if not isinstance(value, (list, dict)):
                print(f"{part:<10} {key:<30} {value!s:>12}")
    summary = {"bench": "reliability", "quick": args.quick, **results}
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
