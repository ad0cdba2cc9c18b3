"""The per-song table of report.md and report.html, and the links to each run's predictions.csv.

The table answers "which songs were misidentified, and as whom?": rows = test songs of every
seed, columns = methods, cells ✓ or the singer the method named, the songs most methods got
wrong first. It shows at most ``MAX_SONG_ROWS``; predictions.csv has every song of every run.
"""

from __future__ import annotations

from singerid.evaluation.predictions import predictions_path
from singerid.evaluation.results import ABLATION_METHODS
from singerid.evaluation.summary import DatasetSummary
from singerid.evaluation.tables import DASH, METHOD_LABELS, Table

MAX_SONG_ROWS = 50  # ours: songs shown per dataset in the per-song table (all are in predictions.csv)
RIGHT = "✓"  # the method named the true singer


def per_song_table(s: DatasetSummary, max_rows: int = MAX_SONG_ROWS) -> Table | None:
    """Each test song of each seed with every method's answer (✓ = right, else the singer it named),
    songs most methods got wrong first, at most ``max_rows``; None when no run knows its songs.

    The ablation methods are left out (their table compares them); predictions.csv has everything.
    """
    ds = s.result
    methods = [m for m in ds.methods if m not in ABLATION_METHODS and any(r.songs is not None for r in ds.runs_of(m))]
    if not methods:
        return None
    answers: dict[tuple[int, str], dict[str, str]] = {}  # (seed, song) -> {method: cell}
    truth: dict[tuple[int, str], str] = {}
    for method in methods:
        for run in ds.runs_of(method):
            if run.songs is None:
                continue
            for song, true, pred in zip(run.songs.song_ids, run.song.y_true.tolist(), run.song.y_pred.tolist()):
                truth[(run.seed, song)] = true
                answers.setdefault((run.seed, song), {})[method] = RIGHT if pred == true else pred
    order = {seed: i for i, seed in enumerate(ds.seeds)}
    wrong = {key: sum(cell != RIGHT for cell in cells.values()) for key, cells in answers.items()}
    keys = sorted(answers, key=lambda key: (-wrong[key], order[key[0]], key[1]))
    rows = tuple((str(seed), song, truth[(seed, song)], str(wrong[(seed, song)]),
                  *(answers[(seed, song)].get(m, DASH) for m in methods)) for seed, song in keys[:max_rows])
    seeds = ", ".join(str(x) for x in ds.seeds)
    shown = f"all {len(keys)}" if len(keys) <= max_rows else f"{max_rows} of {len(keys)}"
    caption = (f"{s.key}, song level: {shown} test songs (over seeds {seeds}), those most methods got wrong "
               f"first; {RIGHT} = right, otherwise the singer the method named; {DASH} = the method left the song "
               f"out. Every song of every run, with its vote share and similarity, is in "
               f"predictions/{s.key}/seed-<seed>/<method>.csv (linked above the table).")
    return Table(title=f"Per-song predictions — {s.key}", caption=caption,
                 groups=(("", 4), ("Predicted", len(methods))),
                 columns=("Seed", "Song", "True singer", "Wrong", *(METHOD_LABELS[m] for m in methods)),
                 rows=rows, kinds=("ours",) * len(rows))


def prediction_links(s: DatasetSummary) -> tuple[tuple[int, tuple[tuple[str, str], ...]], ...]:
    """Per seed, (method label, predictions.csv path relative to the report) of every run that wrote one."""
    ds = s.result
    out = []
    for seed in ds.seeds:
        links = tuple((METHOD_LABELS[m], predictions_path(s.key, seed, m)) for m in ds.methods
                      for run in ds.runs_of(m) if run.seed == seed and run.songs is not None)
        if links:
            out.append((seed, links))
    return tuple(out)
