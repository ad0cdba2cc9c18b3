#!/usr/bin/env python
"""How hard is a corpus? MFCC statistics + logistic regression, song accuracy on the album split.

Trains on the train albums and tests on the test albums of every singer (the paper's 4/1/1
album split for the given seed), prints a table with chance level beside the accuracy, and
writes JSON. Run by hand, never imported:

    python scripts/corpus_baseline.py demo-out/corpus --seed 0
    python scripts/corpus_baseline.py demo-out/corpus --json          # JSON on stdout only
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

from singerid.baseline import BaselineResult, evaluate_baseline
from singerid.datasets import load_dataset
from singerid.errors import SingeridError

DEFAULT_OUT = Path("bench-out/corpus_baseline.json")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path, help="dataset root (any layout singerid reads, e.g. a synthetic corpus)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the album split and the classifier")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes for MFCCs")
    parser.add_argument("--json", action="store_true", help="print the JSON result instead of the table")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the JSON result")
    args = parser.parse_args(argv)
    try:
        started = time.perf_counter()
        tracks = load_dataset(args.corpus, kind="auto", seed=args.seed, split="album").tracks
        result = evaluate_baseline(tracks, seed=args.seed, workers=args.workers,
                                   progress=sys.stderr.isatty() and not args.json)
        elapsed = time.perf_counter() - started
    except SingeridError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return exc.exit_code
    report = {"corpus": str(args.corpus), "split": "album 4/1/1 per singer (train -> test)", "level": "song",
              "seed": args.seed, "method": "mfcc-logreg (mean+std of 20 MFCCs and deltas)",
              "seconds": round(elapsed, 1), **result.to_dict()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print(_table(args.corpus, args.seed, result))
        print(f"wrote {args.out} ({elapsed:.1f} s)")
    return 0


def _table(corpus: Path, seed: int, result: BaselineResult) -> str:
    per_singer: dict[str, list[bool]] = defaultdict(list)
    for p in result.predictions:
        per_singer[p.singer].append(p.correct)
    worst = min(per_singer, key=lambda s: sum(per_singer[s]) / len(per_singer[s]))
    best = max(per_singer, key=lambda s: sum(per_singer[s]) / len(per_singer[s]))
    rows = [
        ("corpus", str(corpus)), ("split / level / seed", f"album 4/1/1 / song / {seed}"),
        ("singers / train songs / test songs", f"{result.n_singers} / {result.n_train} / {result.n_test}"),
        ("mfcc-logreg song accuracy", f"{100 * result.accuracy:.1f} %"),
        ("chance (most common test singer)", f"{100 * result.chance:.1f} %"),
        ("best singer", f"{best} ({sum(per_singer[best])}/{len(per_singer[best])})"),
        ("worst singer", f"{worst} ({sum(per_singer[worst])}/{len(per_singer[worst])})"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


if __name__ == "__main__":
    sys.exit(main())
