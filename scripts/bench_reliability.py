"""Benchmark: how singerid holds up against hostile input and a hostile environment.

One function per part, each returning a dict of figures; ``main`` runs the parts asked for,
prints a table and writes JSON (last stdout line = JSON summary).
  - fuzz: cases of random bytes, truncations and bit flips of real wav/flac/ogg/mp3, odd rates
    (1 Hz - 384 kHz) and channels (0-8), NaN / inf / 1e30 samples, long silence and odd names
    (non-UTF-8, newlines, terminal escapes, 240-byte names) through ``singerid check-audio``
    (the decode -> log-mel -> blocks path of query and embed-corpus) in one process: cases
    tried, internal errors, hangs (a case over the per-case timeout), ok / refused, slowest
    case, and the process's peak RSS.
Parts to come (one function each, added to PARTS): kills survived per command, queries
answered vs refused during ingest.

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


PARTS: dict[str, Callable[[argparse.Namespace], dict]] = {
    "fuzz": lambda args: fuzz_part(cases=args.cases, seed=args.seed),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small run (under 3 minutes): 150 fuzz cases")
    parser.add_argument("--cases", type=int, default=None, help="fuzz cases [1000; --quick 150]")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)}")
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args()
    args.cases = args.cases or (150 if args.quick else 1_000)
    results = {name: PARTS[name](args) for name in args.parts.split(",") if name}
    print(f"{'part':<8} {'figure':<22} {'value':>12}")
    for part, figures in results.items():
        for key, value in figures.items():
            if not isinstance(value, (list, dict)):
                print(f"{part:<8} {key:<22} {value!s:>12}")
    summary = {"bench": "reliability", "quick": args.quick, **results}
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
