"""The report's tables as data (header groups, columns, rows of text), shared by the
Markdown, HTML and terminal writers so that they show the same numbers.

Cell conventions: ``0.93 ± 0.01`` = mean ± population std over seeds (one seed: just the
value); ``–`` = dataset or method not run (or failed); ``n/a`` = the method has no such level.
"""

from __future__ import annotations

from dataclasses import dataclass

from singerid.evaluation.metrics import Aggregate
from singerid.evaluation.paper import (DATASET_ABBREVIATIONS, FIG3_BLOCK_ACCURACY_A20, PAPER_LEVEL,
                                       TABLE1, published_row)
from singerid.evaluation.results import ABLATION_METHODS, K_VALUES, KNN_METHODS, METHODS, PAPER_DATASETS
from singerid.evaluation.summary import ABLATION_REFERENCE, METRICS, DatasetSummary, ablation_rows

DASH = "–"  # not run
NA = "n/a"  # no such level for this method
REUSED_MARK = "*"  # timings: a stage an earlier run did (its time then, not spent now)
METHOD_LABELS: dict[str, str] = {
    "crnn": "CRNN",
    "attcrnn": "Attention-CRNN",
    "attcrnn-knn": "Attention-CRNN-KNN",
    "crnn-knn": "CRNN-KNN",
    "mfcc-logreg": "MFCC + LogReg",
    "voice": "Voice-AttCRNN (ours, softmax)",
    "voice-knn": "Voice-AttCRNN-KNN (ours)",
    "ge2e-knn": "GE2E-KNN (Resemblyzer)",
    "voice-knn-clean": "Voice-KNN, clean-stem queries",
    "mfcc-logreg-clean": "MFCC + LogReg, clean voice stems",
    "voice-no-separation-knn": "- separation (mix input)",
    "voice-no-remix-knn": "- shuffle-and-remix",
    "voice-no-gain-tilt-knn": "- gain/tilt",
    "voice-softmax-head-knn": "- AAM (softmax head)",
    "voice-no-backend-knn": "- LDA/WCCN back end",
    "voice-with-adversary-knn": "+ album adversary",
}
PAPER_METHODS: tuple[str, ...] = ("crnn", "attcrnn", "attcrnn-knn")  # Table-1 rows we reproduce
FULL_CONFIGURATION_LABEL = "Voice-AttCRNN-KNN (all levers)"  # first row of the ablation table
METRIC_LABELS: dict[str, str] = {"accuracy": "Accuracy", "precision": "Precision", "recall": "Recall", "f1": "F1"}
LEVEL_LABELS: dict[str, str] = {"song": "song level (majority vote of 1-s blocks)",
                                "block": "block level (1-s blocks of 32 frames)"}


@dataclass(frozen=True, slots=True)
class Table:
    """A rendered-to-text table. ``groups`` (label, span) covers ``columns`` left to right;
    ``kinds`` gives each row's origin: "ours", "paper" or "extra" (ours, not in the paper)."""

    title: str
    caption: str
    groups: tuple[tuple[str, int], ...]
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    kinds: tuple[str, ...]


def fmt(agg: Aggregate | None, digits: int = 2) -> str:
    """``mean ± std`` (std only with 2+ seeds), or ``–`` for None."""
    if agg is None:
        return DASH
    if agg.n_seeds < 2:
        return f"{agg.mean:.{digits}f}"
    return f"{agg.mean:.{digits}f} ± {agg.std:.{digits}f}"


def split_caption(summaries: tuple[DatasetSummary, ...], keys: tuple[str, ...]) -> str:
    """"artist20: <rule>, seeds 0, 21, 42; singer32: not run" for the datasets ``keys``."""
    by_key = {s.key: s for s in summaries}
    parts = []
    for key in keys:
        s = by_key.get(key)
        if s is None:
            parts.append(f"{key}: not run")
            continue
        seeds = ", ".join(str(x) for x in s.result.seeds)
        failed = " (FAILED, see notes)" if s.result.error else ""
        parts.append(f"{key}: {s.result.split_rule}, seeds {seeds}{failed}")
    return "; ".join(parts)


def metric_table(summaries: tuple[DatasetSummary, ...], level: str, *,
                 datasets: tuple[str, ...] = PAPER_DATASETS, title: str) -> Table:
    """Table-1 layout: rows = methods, column groups Accuracy / Precision / Recall / F1 x datasets.

    With ``datasets == PAPER_DATASETS`` the paper's published rows sit beside ours (song
    level: Table 1; block level: the Fig. 3 accuracy) and our rows of the paper's methods are
    always shown; elsewhere, and for an extra row (†), only a method that ran on one of
    ``datasets`` has a row; the ablation methods never (they have ``ablation_table``).
    """
    by_key = {s.key: s for s in summaries}
    with_paper = datasets == PAPER_DATASETS
    heads = tuple(DATASET_ABBREVIATIONS.get(k, k) for k in datasets)
    rows: list[tuple[str, ...]] = []
    kinds: list[str] = []

    def ours(method: str, kind: str) -> None:
        cells = []
        for metric in METRICS:
            for key in datasets:
                s = by_key.get(key)
                m = s.method(method) if s is not None else None
                lv = None if m is None else (m.song if level == "song" else m.block)
                cells.append(NA if (m is not None and lv is None) else fmt(lv.metric(metric) if lv else None))
        label = METHOD_LABELS[method] + ("" if kind == "ours" else " †")
        rows.append((label, "ours", *cells))
        kinds.append(kind)

    def paper(label: str, values: list[float | None]) -> None:
        rows.append((label, "paper", *(DASH if v is None else f"{v:.2f}" for v in values)))
        kinds.append("paper")

    if with_paper and level == PAPER_LEVEL:
        for row in TABLE1:
            if row.method is None:
                paper(row.label, [row.value(mt, k) for mt in METRICS for k in datasets])
    ran = {m.method for key in datasets if key in by_key for m in by_key[key].methods}
    for method in PAPER_METHODS:
        if with_paper or method in ran:  # beside the paper's rows always; in the user's own tables only if run
            ours(method, "ours")
        if with_paper and level == PAPER_LEVEL and (row := published_row(method)) is not None:
            paper(row.label, [row.value(mt, k) for mt in METRICS for k in datasets])
        if with_paper and level == "block" and method == "attcrnn-knn":
            paper("Attention-CRNN-KNN (Fig. 3)",
                  [FIG3_BLOCK_ACCURACY_A20 if (mt, k) == ("accuracy", "artist20") else None
                   for mt in METRICS for k in datasets])
    for method in METHODS:  # extra rows only for methods that ran on these datasets: no all-dash rows
        if method not in PAPER_METHODS and method not in ABLATION_METHODS and method in ran:
            ours(method, "extra")
    caption = (f"{LEVEL_LABELS[level].capitalize()}; ours = mean ± std over seeds; "
               f"† = extra row, not in the paper. Splits: {split_caption(summaries, datasets)}.")
    groups = (("", 2), *((METRIC_LABELS[mt], len(datasets)) for mt in METRICS))
    return Table(title=title, caption=caption, groups=groups,
                 columns=("Method", "Source", *(heads * len(METRICS))), rows=tuple(rows), kinds=tuple(kinds))


def accuracy_vs_k_table(s: DatasetSummary) -> Table | None:
    """Accuracy of each KNN method as a function of K (song and block level), or None.
    The ablation methods are left out: they are compared in ``ablation_table``."""
    rows, kinds = [], []
    for method in (m for m in KNN_METHODS if m not in ABLATION_METHODS):
        m = s.method(method)
        if m is None or not m.accuracy_vs_k:
            continue
        points = {p.k: p for p in m.accuracy_vs_k}
        for level in ("song", "block"):
            cells = [fmt(getattr(points[k], level)) if k in points else DASH for k in K_VALUES]
            rows.append((METHOD_LABELS[method], level, *cells))
            kinds.append("ours" if method == "attcrnn-knn" else "extra")
    if not rows:
        return None
    return Table(title=f"Accuracy vs K — {s.key}",
                 caption=(f"{s.key}: accuracy when each block takes its K nearest reference blocks "
                          f"(the paper uses K = 11); {s.result.split_rule}, seeds {_seeds(s)}; "
                          f"{sample_sizes(s)}."),
                 groups=(("", 2), ("K", len(K_VALUES))),
                 columns=("Method", "Level", *(str(k) for k in K_VALUES)), rows=tuple(rows), kinds=tuple(kinds))


def ablation_table(s: DatasetSummary) -> Table | None:
    """Song accuracy / F1 and block accuracy of the full voice configuration and of each
    ablation method that ran (one lever flipped), with Δ song accuracy; None when none ran."""
    rows = []
    for row in ablation_rows(s):
        label = FULL_CONFIGURATION_LABEL if row.lever is None else METHOD_LABELS[row.method]
        n_seeds = DASH if row.song_accuracy is None else str(row.song_accuracy.n_seeds)
        delta = "ref." if row.lever is None else fmt_delta(row.delta_song_accuracy)
        rows.append((label, row.method, fmt(row.song_accuracy), fmt(row.song_f1), fmt(row.block_accuracy),
                     n_seeds, delta))
    if not rows:
        return None
    full = METHOD_LABELS[ABLATION_REFERENCE]
    caption = (f"{s.key}, song level (majority vote of 1-s blocks) and block level: each row after the first "
               f"flips one lever of the full configuration ({full}: separated vocals, shuffle-and-remix, "
               "gain/tilt, AAM head, LDA/WCCN back end); mean ± std over seeds; Δ = song accuracy "
               "minus the full configuration's, paired over the seeds both completed; "
               f"{s.result.split_rule}, seeds {_seeds(s)}.")
    return Table(title=f"Ablation — {s.key}", caption=caption,
                 groups=(("", 2), ("Song", 2), ("Block", 1), ("", 2)),
                 columns=("Lever flipped", "Method", "accuracy", "F1", "accuracy", "Seeds", "Δ song accuracy"),
                 rows=tuple(rows), kinds=("ours",) * len(rows))


def fmt_delta(delta: float | None, digits: int = 2) -> str:
    """A signed difference ("-0.12", "+0.03"; a rounded zero is "+0.00"), or ``–`` for None."""
    if delta is None:
        return DASH
    return f"{round(delta, digits) + 0.0:+.{digits}f}"


def per_singer_table(s: DatasetSummary, level: str = "song") -> Table | None:
    """Per-singer F1 of every method but the ablations (rows = singers), or None when nothing ran."""
    methods = [m for m in s.methods if (m.singers_song if level == "song" else m.singers_block)
               and m.method not in ABLATION_METHODS]
    if not methods:
        return None
    rows = []
    for i, singer in enumerate(s.result.singers):
        first = methods[0].singers_song if level == "song" else methods[0].singers_block
        cells = [fmt((m.singers_song if level == "song" else m.singers_block)[i].f1) for m in methods]
        rows.append((singer, str(first[i].support), *cells))
    return Table(title=f"Per-singer F1 — {s.key}",
                 caption=(f"{s.key}, {LEVEL_LABELS[level]}: F1 of each singer, mean ± std over seeds; "
                          f"support = test {level}s summed over seeds; {s.result.split_rule}, seeds {_seeds(s)}."),
                 groups=(("", 2), ("F1", len(methods))),
                 columns=("Singer", "Support", *(METHOD_LABELS[m.method] for m in methods)),
                 rows=tuple(rows), kinds=("ours",) * len(rows))


def sample_sizes(s: DatasetSummary) -> str:
    """"n = 60 test songs / 480 test blocks per seed" of the dataset's KNN methods (ranges where they differ)."""
    methods = [m for m in (s.method(k) for k in KNN_METHODS if k not in ABLATION_METHODS) if m is not None]
    songs = [n for m in methods for _, n in m.song.n_items]
    blocks = [n for m in methods if m.block is not None for _, n in m.block.n_items]
    return f"n = {count_range(songs)} test songs / {count_range(blocks)} test blocks per seed" if songs else ""


def count_range(values: list[int]) -> str:
    """"480" or "470–480" (thousands separated)."""
    if not values:
        return DASH
    lo, hi = min(values), max(values)
    return f"{lo:,}" if lo == hi else f"{lo:,}–{hi:,}"


def counts_table(s: DatasetSummary) -> Table | None:
    """Songs and blocks per split and seed, or None when no counts were recorded."""
    ds = s.result
    if not ds.counts:
        return None
    by = {(c.seed, c.split): c for c in ds.counts}
    rows = []
    for seed in ds.seeds:
        cells = []
        for split in ("train", "val", "test"):
            c = by.get((seed, split))
            cells += [DASH, DASH] if c is None else [f"{c.n_songs:,}", f"{c.n_blocks:,}"]
        rows.append((str(seed), *cells))
    return Table(title=f"Counts — {ds.key}", caption=f"{ds.key}: songs and 1-s blocks per split; {ds.split_rule}.",
                 groups=(("", 1), ("Train", 2), ("Val", 2), ("Test", 2)),
                 columns=("Seed", "songs", "blocks", "songs", "blocks", "songs", "blocks"),
                 rows=tuple(rows), kinds=("ours",) * len(rows))


def timings_table(s: DatasetSummary) -> Table | None:
    """Seconds per stage and seed (stages shared by all seeds under "all"), or None.

    A stage an earlier run did (a reused model) shows that run's time with a "*" and is left
    out of the totals, which are the time this run spent.
    """
    ds = s.result
    if not ds.timings:
        return None
    stages = list(dict.fromkeys(t.stage for t in ds.timings))
    cols = [seed for seed in (None, *ds.seeds) if any(t.seed == seed for t in ds.timings)]
    spent = [t for t in ds.timings if not t.reused]
    rows = []
    for stage in stages:
        cells = []
        for c in cols:
            here = [t for t in ds.timings if t.stage == stage and t.seed == c]
            reused = bool(here) and all(t.reused for t in here)
            cells.append(DASH if not here else f"{sum(t.seconds for t in here):.1f}{REUSED_MARK if reused else ''}")
        rows.append((stage, *cells, f"{sum(t.seconds for t in spent if t.stage == stage):.1f}"))
    rows.append(("total", *(f"{sum(t.seconds for t in spent if t.seed == c):.1f}" for c in cols),
                 f"{sum(t.seconds for t in spent):.1f}"))
    caption = f"{ds.key}: wall-clock seconds per stage and seed."
    if any(t.reused for t in ds.timings):
        caption += (f" {REUSED_MARK} = reused: a model an earlier run trained (found in OUT or copied from "
                    "--reuse-home); its original training time, not counted in the totals.")
    return Table(title=f"Timings — {ds.key}", caption=caption,
                 groups=(("", 1), ("Seed", len(cols)), ("", 1)),
                 columns=("Stage", *("all" if c is None else str(c) for c in cols), "Total"),
                 rows=tuple(rows), kinds=("ours",) * len(rows))


def _seeds(s: DatasetSummary) -> str:
    return ", ".join(str(x) for x in s.result.seeds)
