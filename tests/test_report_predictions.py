"""predictions.csv: one row per test song of each run, written beside the reports and pointed at by report.json."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from report_data import dataset, multi_dataset_results
from singerid.errors import ParameterError
from singerid.evaluation import EvaluationResults, Predictions, RunResult, SongDetails, write_reports
from singerid.evaluation.predictions import COLUMNS, predictions_path, render_predictions_csv


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_a_knn_run_becomes_one_row_per_song_with_vote_share_and_similarity():
    songs = SongDetails(("ann/s1", "bob/s2"), ("/d/ann/s1.mp3", "/d/bob/s2.mp3"), ("a1", None),
                        n_blocks=[4, 3], vote_share=[0.75, 1 / 3], similarity=[0.91234, 0.5])
    run = RunResult("attcrnn-knn", 21, song=Predictions(["ann", "bob"], ["ann", "cy"]),
                    block=Predictions(["ann"], ["ann"]), songs=songs)
    text = render_predictions_csv("synthetic", run)
    assert text.splitlines()[0] == ",".join(COLUMNS)
    assert _rows(text) == [
        {"dataset": "synthetic", "seed": "21", "method": "attcrnn-knn", "song": "ann/s1", "path": "/d/ann/s1.mp3",
         "album": "a1", "true_singer": "ann", "predicted": "ann", "correct": "1", "n_blocks": "4",
         "vote_share": "0.7500", "similarity": "0.9123", "probability": ""},
        {"dataset": "synthetic", "seed": "21", "method": "attcrnn-knn", "song": "bob/s2", "path": "/d/bob/s2.mp3",
         "album": "", "true_singer": "bob", "predicted": "cy", "correct": "0", "n_blocks": "3",
         "vote_share": "0.3333", "similarity": "0.5000", "probability": ""}]


def test_song_details_must_match_the_songs():
    song = Predictions(["ann", "bob"], ["ann", "bob"])
    with pytest.raises(ParameterError, match=r"crnn: 1 song details for 2 songs"):
        RunResult("crnn", 0, song=song, block=song, songs=SongDetails(("a",), ("p",), (None,)))
    with pytest.raises(ParameterError, match=r"vote_share must be 2 finite values in \[0.0, 1.0\], got \[0.5, 1.5\]"):
        SongDetails(("a", "b"), ("p", "q"), (None, None), vote_share=[0.5, 1.5])


def test_write_reports_writes_one_csv_per_run_where_report_json_points(tmp_path):
    results = multi_dataset_results()
    paths = write_reports(results, tmp_path)
    doc = json.loads(paths.json.read_text())
    pointed = {tmp_path / rel for ds in doc["datasets"].values() for m in ds["methods"].values()
               for rel in (m["predictions"] or {}).values()}
    assert pointed == set(paths.predictions) and all(p.is_file() for p in pointed)
    n_runs = sum(len(ds.runs) for ds in results.datasets)
    assert len(pointed) == n_runs == 3 * 5 + 2 * 12  # artist20: 5 methods x 3 seeds; synthetic: 12 x 2
    rows = _rows((tmp_path / predictions_path("artist20", 21, "mfcc-logreg")).read_text())
    run = next(r for r in results.dataset("artist20").runs if (r.method, r.seed) == ("mfcc-logreg", 21))
    assert [r["song"] for r in rows] == list(run.songs.song_ids)
    assert [r["predicted"] for r in rows] == run.song.y_pred.tolist()
    assert {r["n_blocks"] for r in rows} == {""} and {r["vote_share"] for r in rows} == {""}  # no blocks
    assert all(0.0 <= float(r["probability"]) <= 1.0 for r in rows)
    accuracy = np.mean([r["correct"] == "1" for r in rows])
    assert accuracy == pytest.approx(doc["datasets"]["artist20"]["methods"]["mfcc-logreg"]["song"]["accuracy"]
                                     ["per_seed"]["21"])


def test_a_rerun_with_fewer_runs_leaves_no_stale_csv(tmp_path):
    write_reports(multi_dataset_results(), tmp_path)
    fewer = EvaluationResults(datasets=(dataset("synthetic", ("a", "b", "c"), (0,), methods=("crnn",)),))
    paths = write_reports(fewer, tmp_path)
    left = sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "predictions").rglob("*"))
    assert left == ["predictions/synthetic", "predictions/synthetic/seed-0", "predictions/synthetic/seed-0/crnn.csv"]
    assert paths.predictions == (tmp_path / "predictions/synthetic/seed-0/crnn.csv",)
