"""report.json: built from hand-made multi-dataset, multi-seed results, validated by the schema."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from report_data import ARTIST20, dataset, multi_dataset_results
from singerid.errors import ArtefactError, ParameterError
from singerid.evaluation import (DatasetResult, EvaluationResults, KAccuracy, Predictions, RunResult,
                                 StageTiming, validate_report)
from singerid.evaluation.report_json import build_report, render_json
from singerid.evaluation.schema import report_errors


@pytest.fixture(scope="module")
def doc() -> dict:
    return json.loads(render_json(build_report(multi_dataset_results())))


def test_report_from_hand_made_results_validates(doc):
    validate_report(doc)  # after a JSON round trip
    assert doc["schema_version"] == 1
    assert list(doc["datasets"]) == ["artist20", "singer32", "synthetic"]
    for name in ("python", "singerid", "numpy", "sklearn", "torch", "faiss"):
        assert name in doc["software"]
    assert doc["config"] == {"feature": {"sample_rate": 16000, "n_mels": 128}, "k": 11}


def test_dataset_entry_has_split_seeds_counts_and_timings(doc):
    a20 = doc["datasets"]["artist20"]
    assert a20["split"] == {"rule": "album split 4/1/1 per artist (paper §3.1)", "seeds": [0, 21, 42]}
    assert a20["singers"] == list(ARTIST20)
    assert a20["counts"]["21"]["test"] == {"songs": 60, "blocks": 480}
    assert a20["timings"]["total_seconds"] == pytest.approx(sum(12.5 + s + 0.75 for s in (0, 21, 42)) + 1.25)
    assert a20["error"] is None
    assert list(a20["methods"]) == ["crnn", "attcrnn", "attcrnn-knn", "crnn-knn", "mfcc-logreg"]


def test_method_entry_has_levels_metrics_and_per_seed_values(doc):
    knn = doc["datasets"]["artist20"]["methods"]["attcrnn-knn"]
    for level in ("block", "song"):
        for metric in ("accuracy", "precision", "recall", "f1"):
            agg = knn[level][metric]
            values = list(agg["per_seed"].values())
            assert list(agg["per_seed"]) == ["0", "21", "42"]
            assert agg["mean"] == pytest.approx(np.mean(values))
            assert agg["std"] == pytest.approx(np.std(values))
    assert knn["song"]["n_items"] == {"0": 60, "21": 60, "42": 60}
    assert knn["block"]["n_items"]["0"] == 480
    assert len(knn["per_singer"]["song"]) == 20 and knn["per_singer"]["song"][0]["singer"] == "aerosmith"
    assert np.array(knn["confusion"]["block"]).sum() == 3 * 480
    assert [p["k"] for p in knn["accuracy_vs_k"]] == [1, 3, 5, 7, 11, 15, 21, 31, 51]
    assert doc["datasets"]["artist20"]["methods"]["crnn"]["accuracy_vs_k"] is None


def test_mfcc_logreg_says_it_has_no_block_level(doc):
    m = doc["datasets"]["artist20"]["methods"]["mfcc-logreg"]
    assert m["block"] is None and m["per_singer"]["block"] is None and m["confusion"]["block"] is None
    assert m["song"]["accuracy"]["mean"] > 0


def test_failed_dataset_is_an_error_entry_while_others_are_reported(doc):
    s32 = doc["datasets"]["singer32"]
    assert s32["error"] == "singer32: /data/singer32 matches no known layout"
    assert s32["methods"] == {}
    assert doc["datasets"]["synthetic"]["error"] is None
    assert doc["datasets"]["synthetic"]["methods"]["attcrnn"]["song"]["accuracy"]["per_seed"].keys() == {"0", "1"}


def test_a_dataset_that_failed_half_way_keeps_its_completed_runs():
    partial = dataset("singer60", tuple(f"s{i}" for i in range(4)), (0, 21), methods=("attcrnn",),
                      error="seed 42: out of memory", split_rule="8:1:1 per singer (paper §3.1)")
    partial = DatasetResult(key="singer60", split_rule=partial.split_rule, seeds=(0, 21, 42),
                            singers=partial.singers, runs=partial.runs, error=partial.error)
    doc = build_report(EvaluationResults(datasets=(partial,)))
    entry = doc["datasets"]["singer60"]
    assert entry["error"] == "seed 42: out of memory"
    assert entry["methods"]["attcrnn"]["seeds"] == [0, 21]


def _mutated(doc: dict, change) -> dict:
    bad = copy.deepcopy(doc)
    change(bad)
    return bad


def test_an_out_of_range_metric_is_rejected_with_its_path_and_value(doc):
    bad = _mutated(doc, lambda d: d["datasets"]["artist20"]["methods"]["crnn"]["song"]["f1"].update(mean=1.2))
    with pytest.raises(ArtefactError) as err:
        validate_report(bad)
    assert str(err.value) == ("invalid report.json: datasets.artist20.methods.crnn.song.f1.mean "
                              "must be a number in [0, 1], got 1.2")


@pytest.mark.parametrize("change, expected", [
    (lambda d: d.update(schema_version=2), "schema_version must be 1, got 2"),
    (lambda d: d["datasets"]["artist20"].pop("split"), "datasets.artist20.split is missing"),
    (lambda d: d["datasets"]["artist20"]["methods"]["mfcc-logreg"].update(
        block=d["datasets"]["artist20"]["methods"]["crnn"]["block"]),
     "datasets.artist20.methods.mfcc-logreg.block must be null: mfcc-logreg has no block level"),
    (lambda d: d["datasets"]["artist20"]["methods"].update(
        knn=d["datasets"]["artist20"]["methods"]["crnn"]),
     "datasets.artist20.methods keys must be one of crnn, attcrnn, attcrnn-knn, crnn-knn, mfcc-logreg, got 'knn'"),
    (lambda d: d["datasets"]["artist20"]["methods"]["crnn"]["song"]["accuracy"]["per_seed"].update({"7": 0.5}),
     "datasets.artist20.methods.crnn.song.accuracy.per_seed keys must be seeds of split.seeds [0, 21, 42], got '7'"),
    (lambda d: d["datasets"]["artist20"]["methods"]["crnn"]["song"]["recall"].update(mean=0.0),
     "datasets.artist20.methods.crnn.song.recall.mean must be the mean of per_seed"),
    (lambda d: d["datasets"]["artist20"]["methods"]["crnn"]["confusion"]["song"].pop(),
     "datasets.artist20.methods.crnn.confusion.song must be a 20x20 list of lists of counts >= 0"),
    (lambda d: d["datasets"]["synthetic"].update(methods={}),
     "datasets.synthetic.methods must not be empty unless error is set"),
    (lambda d: d["datasets"]["artist20"]["methods"]["crnn"].update(accuracy_vs_k=[]),
     "datasets.artist20.methods.crnn.accuracy_vs_k must be null: crnn is not a KNN method"),
    (lambda d: d["datasets"]["artist20"]["timings"].update(total_seconds=1.0),
     "datasets.artist20.timings.total_seconds must equal the sum of the stages"),
    (lambda d: d.update(extra=1), "report.extra is not a known key"),
])
def test_invalid_reports_are_rejected_with_a_clear_message(doc, change, expected):
    errors = report_errors(_mutated(doc, change))
    assert errors, "the mutated report should be invalid"
    assert errors[0].startswith(expected), errors


def test_more_than_one_problem_is_counted_in_the_message(doc):
    def change(d):
        d["schema_version"] = 0
        d["generated_at"] = ""
    with pytest.raises(ArtefactError, match=r"schema_version must be 1, got 0 \(and 1 more problem\(s\)\)"):
        validate_report(_mutated(doc, change))


def test_a_non_object_is_rejected():
    with pytest.raises(ArtefactError, match=r"report must be an object, got list"):
        validate_report([])


def test_run_records_refuse_inconsistent_input():
    song = Predictions(["a"], ["a"])
    with pytest.raises(ParameterError, match=r"unknown method 'knn'"):
        RunResult("knn", 0, song=song, block=song)
    with pytest.raises(ParameterError, match=r"'mfcc-logreg' has no block level"):
        RunResult("mfcc-logreg", 0, song=song, block=song)
    with pytest.raises(ParameterError, match=r"'crnn' needs block-level predictions"):
        RunResult("crnn", 0, song=song, block=None)
    with pytest.raises(ParameterError, match=r"only for KNN methods, got it for 'attcrnn'"):
        RunResult("attcrnn", 0, song=song, block=song, accuracy_vs_k=(KAccuracy(1, 0.5, 0.5),))
    with pytest.raises(ParameterError, match=r"song_accuracy at k=3 must be a number in \[0, 1\], got 1.5"):
        KAccuracy(3, 1.5, 0.5)
    with pytest.raises(ParameterError, match=r"seconds must be finite and >= 0, got -1"):
        StageTiming("train", -1)


def test_dataset_records_refuse_inconsistent_input():
    run = RunResult("crnn", 0, song=Predictions(["a"], ["b"]), block=Predictions(["a"], ["b"]))
    with pytest.raises(ParameterError, match=r"artist20/crnn: label 'b' is not in the singer list"):
        DatasetResult("artist20", "album split", (0,), singers=("a",), runs=(run,))
    with pytest.raises(ParameterError, match=r"run 'crnn' has seed 0, not in seeds \[1\]"):
        DatasetResult("artist20", "album split", (1,), singers=("a", "b"), runs=(run,))
    with pytest.raises(ParameterError, match=r"artist20: no runs and no error"):
        DatasetResult("artist20", "album split", (0,))
    with pytest.raises(ParameterError, match=r"dataset key must be lower-case .*, got 'Artist 20'"):
        DatasetResult("Artist 20", "album split", (0,), error="x")
    with pytest.raises(ParameterError, match=r"dataset keys must be distinct, got \['a', 'a'\]"):
        EvaluationResults(datasets=(DatasetResult("a", "r", (0,), error="x"),) * 2)


def test_the_documented_example_validates():
    doc_page = (Path(__file__).resolve().parents[1] / "docs" / "report-schema.md").read_text(encoding="utf-8")
    example = doc_page.split("## Example", 1)[1].split("```json", 1)[1].split("```", 1)[0]
    validate_report(json.loads(example))


def test_counts_and_timings_must_name_seeds_of_the_dataset():
    from singerid.evaluation import SplitCount

    with pytest.raises(ParameterError, match=r"a20: counts for seed 5, not in seeds \[0\]"):
        DatasetResult("a20", "album split", (0,), error="x", counts=(SplitCount(5, "test", 1, 1),))
    with pytest.raises(ParameterError, match=r"a20: stage 'train' has seed 5, not in seeds \[0\]"):
        DatasetResult("a20", "album split", (0,), error="x", timings=(StageTiming("train", 1.0, 5),))
    with pytest.raises(ParameterError, match=r"split must be one of .*, got 'dev'"):
        SplitCount(0, "dev", 1, 1)
