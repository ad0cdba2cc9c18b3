"""report.json: built from hand-made multi-dataset, multi-seed results, validated by the JSON Schema file
(report.schema.json, through jsonschema) and the consistency checks of singerid.evaluation.schema."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from report_data import ABLATIONS_RUN, ARTIST20, ablation_dataset, dataset, multi_dataset_results
from singerid.errors import ArtefactError, ParameterError
from singerid.evaluation import (METHODS, DatasetResult, EvaluationResults, KAccuracy, Predictions, RunResult,
                                 StageTiming, validate_report)
from singerid.evaluation.report_json import build_report, render_json
from singerid.evaluation.schema import report_errors

V1_METHODS = ("crnn", "attcrnn", "attcrnn-knn", "crnn-knn", "mfcc-logreg")  # the methods of schema version 1
from singerid.evaluation.summary import ABLATION_LEVERS
from singerid.evaluation.tables import METHOD_LABELS


@pytest.fixture(scope="module")
def doc() -> dict:
    return json.loads(render_json(build_report(multi_dataset_results())))


def test_report_from_hand_made_results_validates(doc):
    validate_report(doc)  # after a JSON round trip
    assert doc["schema_version"] == 3
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
    assert str(err.value) == ("invalid report.json: datasets.artist20.methods.crnn.song.f1.mean: "
                              "1.2 is greater than the maximum of 1")


@pytest.mark.parametrize("change, expected", [
    # the layout (report.schema.json, checked by jsonschema)
    (lambda d: d.update(schema_version=4), "schema_version: 4 is not one of [1, 2, 3]"),
    (lambda d: d.update(schema_version=True), "schema_version: True is not one of [1, 2, 3]"),
    (lambda d: d["datasets"]["artist20"].pop("split"), "datasets.artist20: 'split' is a required property"),
    (lambda d: d["datasets"]["artist20"]["methods"]["mfcc-logreg"].update(
        block=d["datasets"]["artist20"]["methods"]["crnn"]["block"]),
     "datasets.artist20.methods.mfcc-logreg.block: a dict is not of type 'null'"),
    (lambda d: d["datasets"]["artist20"]["methods"].update(
        knn=d["datasets"]["artist20"]["methods"]["crnn"]),
     "datasets.artist20.methods: Additional properties are not allowed ('knn' was unexpected)"),
    (lambda d: d["datasets"]["artist20"]["methods"]["crnn"].update(accuracy_vs_k=[]),
     "datasets.artist20.methods.crnn.accuracy_vs_k: [] is not of type 'null'"),
    (lambda d: d.update(extra=1), "report: Additional properties are not allowed ('extra' was unexpected)"),
    (lambda d: d["datasets"]["synthetic"].pop("ablation"), "datasets.synthetic: 'ablation' is a required property"),
    (lambda d: d["datasets"]["artist20"]["timings"]["stages"][0].pop("reused"),
     "datasets.artist20.timings.stages[0]: 'reused' is a required property"),
    (lambda d: d["datasets"]["artist20"]["methods"]["crnn"]["predictions"].update({"0": "../elsewhere.csv"}),
     "datasets.artist20.methods.crnn.predictions.0: '../elsewhere.csv' does not match"),
    # the arithmetic (singerid.evaluation.schema)
    (lambda d: d["datasets"]["artist20"]["methods"]["crnn"]["song"]["accuracy"]["per_seed"].update({"7": 0.5}),
     "datasets.artist20.methods.crnn.song.accuracy.per_seed: seeds must be among split.seeds [0, 21, 42], got '7'"),
    (lambda d: d["datasets"]["artist20"]["methods"]["crnn"]["song"]["recall"].update(mean=0.0),
     "datasets.artist20.methods.crnn.song.recall.mean: must be the mean of per_seed"),
    (lambda d: d["datasets"]["artist20"]["methods"]["crnn"]["confusion"]["song"].pop(),
     "datasets.artist20.methods.crnn.confusion.song: must be a 20x20 matrix, got list"),
    (lambda d: d["datasets"]["artist20"]["methods"]["crnn"]["predictions"].update(
        {"5": "predictions/artist20/seed-5/crnn.csv"}),
     "datasets.artist20.methods.crnn.predictions: seeds must be among split.seeds [0, 21, 42], got '5'"),
    (lambda d: d["datasets"]["synthetic"].update(methods={}),
     "datasets.synthetic.methods: must not be empty unless error is set"),
    (lambda d: d["datasets"]["artist20"]["timings"].update(total_seconds=1.0),
     "datasets.artist20.timings.total_seconds: must equal the sum of the stages not reused"),
    (lambda d: d["datasets"]["artist20"]["timings"]["stages"][0].update(reused=True),
     "datasets.artist20.timings.total_seconds: must equal the sum of the stages not reused (91.5), got 104"),
    (lambda d: d["datasets"]["synthetic"].update(ablation=None),
     "datasets.synthetic.ablation: must be a list with one row per method, in order: voice-knn, "
     "voice-no-separation-knn, voice-no-remix-knn, voice-no-backend-knn, got None"),
    (lambda d: d["datasets"]["artist20"].update(ablation=[]),
     "datasets.artist20.ablation: must be null when no ablation method ran, got list"),
    (lambda d: d["datasets"]["synthetic"]["ablation"].reverse(),
     "datasets.synthetic.ablation: must be a list with one row per method, in order: voice-knn, "),
    (lambda d: d["datasets"]["synthetic"]["ablation"][1].update(lever="remix"),
     "datasets.synthetic.ablation[1].lever: must be 'input', got 'remix'"),
    (lambda d: d["datasets"]["synthetic"]["ablation"][0].update(lever="input"),
     "datasets.synthetic.ablation[0].lever: must be null for the full configuration, got 'input'"),
    (lambda d: d["datasets"]["synthetic"]["ablation"][2]["song_accuracy"].update(mean=0.0),
     "datasets.synthetic.ablation[2].song_accuracy.mean: must equal the method's mean"),
    (lambda d: d["datasets"]["synthetic"]["ablation"][2]["block_accuracy"].update(n_seeds=3),
     "datasets.synthetic.ablation[2].block_accuracy.n_seeds: must equal the method's number of seeds (2), got 3"),
    (lambda d: d["datasets"]["synthetic"]["ablation"][3].update(delta_song_accuracy=0.5),
     "datasets.synthetic.ablation[3].delta_song_accuracy: must be the mean paired difference of song accuracy"),
    (lambda d: d["datasets"]["synthetic"]["ablation"][0].update(delta_song_accuracy=0.0),
     "datasets.synthetic.ablation[0].delta_song_accuracy: must be null without seeds shared"),
])
def test_invalid_reports_are_rejected_with_a_clear_message(doc, change, expected):
    errors = report_errors(_mutated(doc, change))
    assert errors, "the mutated report should be invalid"
    assert errors[0].startswith(expected), errors


def test_more_than_one_problem_is_counted_in_the_message(doc):
    def change(d):
        d["schema_version"] = 0
        d["generated_at"] = ""
    with pytest.raises(ArtefactError, match=r"schema_version: 0 is not one of \[1, 2, 3\] \(and 1 more problem\(s\)\)"):
        validate_report(_mutated(doc, change))


def test_a_non_object_is_rejected():
    with pytest.raises(ArtefactError, match=r"report: \[\] is not of type 'object'"):
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


# --- the ablation section (schema version 2) and version-1 reports ---------------------------------------

def test_ablation_section_mirrors_the_table_and_the_method_entries(doc):
    assert doc["datasets"]["artist20"]["ablation"] is None  # no ablation method ran there
    assert doc["datasets"]["singer32"]["ablation"] is None
    methods = doc["datasets"]["synthetic"]["methods"]
    rows = doc["datasets"]["synthetic"]["ablation"]
    assert [r["method"] for r in rows] == ["voice-knn", *ABLATIONS_RUN]
    assert [r["lever"] for r in rows] == [None, "input", "remix", "backend"]
    assert [r["label"] for r in rows] == ["Voice-AttCRNN-KNN (all levers)", *(METHOD_LABELS[m] for m in ABLATIONS_RUN)]
    full = methods["voice-knn"]["song"]["accuracy"]["per_seed"]
    for row in rows:
        m = methods[row["method"]]
        for key, level, metric in (("song_accuracy", "song", "accuracy"), ("song_f1", "song", "f1"),
                                   ("block_accuracy", "block", "accuracy")):
            agg = m[level][metric]
            assert row[key] == {"mean": agg["mean"], "std": agg["std"], "n_seeds": 2}
        if row["lever"] is None:
            assert row["delta_song_accuracy"] is None
        else:
            ours = m["song"]["accuracy"]["per_seed"]
            assert row["delta_song_accuracy"] == pytest.approx(np.mean([ours[s] - full[s] for s in ("0", "1")]))


def test_ablation_deltas_in_json_are_exact_and_paired():
    ds = ablation_dataset({"voice-knn": {0: 16, 1: 18}, "voice-no-separation-knn": {0: 12, 1: 10},
                           "voice-with-adversary-knn": {0: 16}, "voice-softmax-head-knn": {1: 19}})
    rows = json.loads(render_json(build_report(EvaluationResults(datasets=(ds,)))))["datasets"]["synthetic"]["ablation"]
    assert [(r["method"], r["lever"]) for r in rows] == [
        ("voice-knn", None), ("voice-no-separation-knn", "input"), ("voice-softmax-head-knn", "head"),
        ("voice-with-adversary-knn", "album_adversary")]
    assert rows[0]["song_accuracy"] == {"mean": pytest.approx(0.85), "std": pytest.approx(0.05), "n_seeds": 2}
    assert [r["delta_song_accuracy"] for r in rows] == [None, pytest.approx(-0.3), pytest.approx(0.05),
                                                       pytest.approx(0.0)]
    assert rows[3]["song_accuracy"] == {"mean": 0.8, "std": 0.0, "n_seeds": 1}


def test_ablation_without_the_full_configuration_has_null_numbers_for_it():
    ds = ablation_dataset({"voice-no-backend-knn": {0: 10, 1: 12}})
    rows = build_report(EvaluationResults(datasets=(ds,)))["datasets"]["synthetic"]["ablation"]
    assert rows[0] == {"method": "voice-knn", "label": "Voice-AttCRNN-KNN (all levers)", "lever": None,
                       "song_accuracy": None, "song_f1": None, "block_accuracy": None, "delta_song_accuracy": None}
    assert rows[1]["delta_song_accuracy"] is None and rows[1]["song_accuracy"]["n_seeds"] == 2


def test_every_ablation_method_has_a_lever():
    from singerid.evaluation.results import ABLATION_METHODS

    assert set(ABLATION_LEVERS) == set(ABLATION_METHODS)
    assert set(ABLATION_LEVERS.values()) == {"input", "remix", "gain_tilt", "head", "backend", "album_adversary"}


def _as_version_2(doc: dict) -> dict:
    """``doc`` as a schema-version-2 report: no predictions pointers, no reused flags."""
    old = copy.deepcopy(doc)
    old["schema_version"] = 2
    for ds in old["datasets"].values():
        for stage in ds["timings"]["stages"]:
            del stage["reused"]
        for method in ds["methods"].values():
            del method["predictions"]
    return old


def _as_version_1(doc: dict) -> dict:
    """``doc`` as a schema-version-1 report: no ablation section, only the methods version 1 knew."""
    old = _as_version_2(doc)
    old["schema_version"] = 1
    for ds in old["datasets"].values():
        del ds["ablation"]
        ds["methods"] = {name: m for name, m in ds["methods"].items() if name in V1_METHODS}
    return old


def test_a_version_2_report_still_validates_against_its_own_layout(doc):
    validate_report(_as_version_2(doc))
    with pytest.raises(ArtefactError, match=r"Unevaluated properties are not allowed \('predictions' was unexpected\)"):
        validate_report(_mutated(_as_version_2(doc), lambda d: d["datasets"]["artist20"]["methods"]["crnn"].update(
            predictions=None)))


def test_a_version_1_report_still_validates_against_its_own_layout(doc):
    validate_report(_as_version_1(doc))


@pytest.mark.parametrize("change, expected", [
    (lambda d: d["datasets"]["artist20"].update(ablation=None),
     "datasets.artist20: Additional properties are not allowed ('ablation' was unexpected)"),
    (lambda d: d["datasets"]["artist20"]["methods"].update(
        {"voice-knn": d["datasets"]["artist20"]["methods"]["attcrnn-knn"]}),
     "datasets.artist20.methods: Additional properties are not allowed ('voice-knn' was unexpected)"),
])
def test_a_version_1_report_with_version_2_content_is_rejected(doc, change, expected):
    errors = report_errors(_mutated(_as_version_1(doc), change))
    assert errors and errors[0].startswith(expected), errors


# --- version 3: the schema file, predictions.csv pointers, reused stages ------------------------------------

def test_the_schema_file_ships_in_the_package_and_names_every_method():
    from singerid.evaluation.results import KNN_METHODS, SONG_ONLY_METHODS
    from singerid.evaluation.schema import load_schema

    schema = load_schema()  # read through importlib.resources, as from an installed wheel
    defs = schema["$defs"]
    assert schema["properties"]["schema_version"]["enum"] == [1, 2, 3]
    for version in ("v2", "v3"):
        entries = defs[f"methods_{version}"]["properties"]
        assert tuple(entries) == METHODS
        for name, entry in entries.items():
            kind = ("song_only_kind" if name in SONG_ONLY_METHODS else "knn_kind" if name in KNN_METHODS
                    else "block_kind")
            assert entry["allOf"] == [{"$ref": f"#/$defs/method_{version}"}, {"$ref": f"#/$defs/{kind}"}], name
    assert tuple(defs["methods_v1"]["properties"]) == V1_METHODS


def test_methods_point_at_their_predictions_csv_per_seed(doc):
    crnn = doc["datasets"]["artist20"]["methods"]["crnn"]
    assert crnn["predictions"] == {str(seed): f"predictions/artist20/seed-{seed}/crnn.csv" for seed in (0, 21, 42)}
    assert doc["datasets"]["synthetic"]["methods"]["mfcc-logreg"]["predictions"]["1"] == \
        "predictions/synthetic/seed-1/mfcc-logreg.csv"


def test_runs_without_song_details_have_no_pointer():
    ds = ablation_dataset({"voice-knn": {0: 16, 1: 18}})  # exact_run: no song details
    doc = build_report(EvaluationResults(datasets=(ds,)))
    assert doc["datasets"]["synthetic"]["methods"]["voice-knn"]["predictions"] is None


def test_a_reused_stage_keeps_its_original_time_out_of_the_total():
    ds = dataset("synthetic", ("a", "b", "c"), (0,), methods=("attcrnn",))
    ds = DatasetResult(key=ds.key, split_rule=ds.split_rule, seeds=ds.seeds, singers=ds.singers, runs=ds.runs,
                       timings=(StageTiming("train attcrnn", 812.5, 0, reused=True), StageTiming("search", 0.5, 0)))
    timings = build_report(EvaluationResults(datasets=(ds,)))["datasets"]["synthetic"]["timings"]
    assert timings == {"stages": [{"stage": "train attcrnn", "seed": 0, "seconds": 812.5, "reused": True},
                                  {"stage": "search", "seed": 0, "seconds": 0.5, "reused": False}],
                       "total_seconds": 0.5}
