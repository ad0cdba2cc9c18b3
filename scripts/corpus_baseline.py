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

from singerid import constants as C
from singerid.baseline import BaselineResult, evaluate_baseline
from singerid.datasets.split import assign_split
from singerid.errors import SingeridError
from singerid.records import Track

DEFAULT_OUT = Path("bench-out/corpus_baseline.json")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path, help="corpus root (holds mp3s-32k/ and lists/)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the album split and the classifier")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes for MFCCs")
    parser.add_argument("--json", action="store_true", help="print the JSON result instead of the table")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the JSON result")
    args = parser.parse_args(argv)
    try:
        started = time.perf_counter()
        tracks = _read_tracks(args.corpus, seed=args.seed)
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


def _read_tracks(root: Path, *, seed: int) -> list[Track]:
    """Tracks of a synthetic (artist20-layout) corpus from ``lists/a20-all-tracks.list``, with
    the album split ``assign_split(albums, seed, key=singer)`` that the readers also use."""
    listing = root / "lists" / "a20-all-tracks.list"
    if not listing.is_file():
        raise SingeridError(f"{root}: no lists/a20-all-tracks.list; is this a synthetic corpus?")
    entries = [line.strip() for line in listing.read_text(encoding="utf-8").splitlines() if line.strip()]
    albums: dict[str, set[str]] = defaultdict(set)
    for entry in entries:
        singer, album, _ = entry.split("/")
        albums[singer].add(album)
    splits = {s: assign_split(sorted(a), seed=seed, key=s, ratio=C.ARTIST20_ALBUM_SPLIT) for s, a in albums.items()}
    tracks = []
    for entry in entries:
        singer, album, _ = entry.split("/")
        path = next((root / "mp3s-32k" / f"{entry}{ext}" for ext in (".mp3", ".flac")
                     if (root / "mp3s-32k" / f"{entry}{ext}").is_file()), root / "mp3s-32k" / f"{entry}.mp3")
        tracks.append(Track(path=path, singer=singer, song_id=entry, split=splits[singer][album],
                            album=album, dataset="artist20"))
    return tracks


if __name__ == "__main__":
    sys.exit(main())
