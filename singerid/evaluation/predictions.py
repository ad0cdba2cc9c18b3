"""predictions.csv: one row per test song of each dataset, seed and method: what the vote said.

Layout under the report directory (``singerid evaluate --out OUT``)::

    OUT/predictions/<dataset>/seed-<seed>/<method>.csv

One file per run (as ``OUT/runs/<dataset>/seed-<seed>/`` holds its models), so a person opens
the one run they care about in a spreadsheet without filtering, and a script globs
``predictions/*/seed-*/*.csv`` and concatenates: every row repeats its dataset, seed and method.
report.json points at each file (``datasets.<d>.methods.<m>.predictions.<seed>``); report.md
and report.html link to them from their per-song table. Columns (``COLUMNS``):

- ``dataset``, ``seed``, ``method``: the run;
- ``song``: the dataset's song id; ``path``: its audio file; ``album`` (empty when unknown);
- ``true_singer``, ``predicted``, ``correct`` (1 or 0);
- ``n_blocks``: 1-s blocks that voted (empty for MFCC + LogReg, which sees whole songs);
- ``vote_share``: share of those blocks that named ``predicted``, in [0, 1];
- ``similarity``: KNN methods: mean over the song's blocks of the cosine similarity to the
  nearest reference block (``singerid query``'s mean similarity); empty for other methods;
- ``probability``: softmax and MFCC methods: mean probability given to ``predicted``; empty for KNN.

Rows are in the order of the test songs. Numbers have 4 decimals.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import PurePosixPath

from singerid.evaluation.results import DatasetResult, EvaluationResults, RunResult

PREDICTIONS_DIR = "predictions"
COLUMNS: tuple[str, ...] = ("dataset", "seed", "method", "song", "path", "album", "true_singer", "predicted",
                            "correct", "n_blocks", "vote_share", "similarity", "probability")


def predictions_path(dataset: str, seed: int, method: str) -> str:
    """Where the run's CSV lies, relative to the report directory (POSIX separators)."""
    return str(PurePosixPath(PREDICTIONS_DIR, dataset, f"seed-{seed}", f"{method}.csv"))


def runs_with_songs(results: EvaluationResults) -> Iterator[tuple[DatasetResult, RunResult]]:
    """Every run that knows its songs (so has a predictions.csv), in report order."""
    for ds in results.datasets:
        for method in ds.methods:
            for run in ds.runs_of(method):
                if run.songs is not None:
                    yield ds, run


def render_predictions_csv(dataset: str, run: RunResult) -> str:
    """The CSV text of one run (header + one row per test song). ``run.songs`` must be set."""
    songs = run.songs
    assert songs is not None, "callers pick runs with songs (runs_with_songs)"
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for i, (true, pred) in enumerate(zip(run.song.y_true.tolist(), run.song.y_pred.tolist())):
        writer.writerow((dataset, run.seed, run.method, songs.song_ids[i], songs.paths[i], songs.albums[i] or "",
                         true, pred, int(true == pred),
                         "" if songs.n_blocks is None else int(songs.n_blocks[i]),
                         _number(songs.vote_share, i), _number(songs.similarity, i), _number(songs.probability, i)))
    return buf.getvalue()


def _number(values, i: int) -> str:
    return "" if values is None else f"{float(values[i]):.4f}"
