"""`singerid evaluate` end to end on a tiny synthetic corpus, its errors, and its decision arithmetic."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from singerid.cli import main
from singerid.config import FeatureConfig, TrainConfig
from singerid.datasets import load_dataset
from singerid.datasets.synth import generate_corpus
from singerid.datasets.synth_spec import CorpusSpec
from singerid.decision import knn_block_votes, song_vote
from singerid.embedder.train import data_fingerprint
from singerid.config import ModelConfig
from singerid.embedder.recipes import ABLATION_RECIPES, RECIPES
from singerid.evaluation import K_VALUES, validate_report
from singerid.evaluation.results import ABLATION_METHODS, DEFAULT_METHODS
from singerid.pipeline.evaluate import EvaluateConfig, _rule_for_seeds
from singerid.pipeline.evaluate_methods import EvalBlocks, knn_run, softmax_run
from singerid.pipeline.evaluate_models import mismatch

TINY = CorpusSpec(singers=3, albums=3, songs_per_album=1, seconds=4.0, seed=5, audio_format="flac", stems=True)
FAST = ["--seeds", "0", "--epochs", "1", "--batch-size", "16", "--workers", "1", "--threads", "2"]
PAPER_COLUMNS = [f"{metric} {ds}" for metric in ("Accuracy", "Precision", "Recall", "F1")
                 for ds in ("A20", "S32", "S60")]


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("evaluate") / "corpus"
    generate_corpus(root, TINY, workers=1)
    return root


@pytest.fixture(scope="module")
def evaluated(corpus, tmp_path_factory):
    """One evaluation of every method on the tiny corpus: (out dir, exit code, stdout)."""
    from click.testing import CliRunner

    from singerid.cli import cli

    out = tmp_path_factory.mktemp("evaluate") / "out"
    result = CliRunner().invoke(cli, ["evaluate", "--dataset", f"synthetic={corpus}", *FAST, "--out", str(out)])
    return out, result.exit_code, result.output


def _model_files(out: Path) -> dict[str, tuple[int, bytes]]:
    files = sorted(out.glob("runs/synthetic/seed-0/*/models/*/*"))
    return {str(p.relative_to(out)): (p.stat().st_mtime_ns, p.read_bytes()) for p in files}


# --- the whole command ------------------------------------------------------------------------

def test_writes_three_reports_with_every_method(evaluated):
    out, code, stdout = evaluated
    assert code == 0, stdout
    for name in ("report.json", "report.md", "report.html"):
        assert (out / name).stat().st_size > 0
    doc = json.loads((out / "report.json").read_text())
    validate_report(doc)
    ds = doc["datasets"]["synthetic"]
    assert ds["error"] is None and ds["split"]["seeds"] == [0]
    assert ds["split"]["rule"].startswith("album split 1/1/1 per singer (paper; 4/1/1 needs 6 albums")
    assert set(ds["methods"]) == set(DEFAULT_METHODS)
    for method, entry in ds["methods"].items():
        assert entry["song"]["n_items"] == {"0": 3}  # one test album of one song per singer
        for metric in ("accuracy", "precision", "recall", "f1"):
            assert 0.0 <= entry["song"][metric]["mean"] <= 1.0
        if method.startswith("mfcc-logreg"):
            assert entry["block"] is None and entry["accuracy_vs_k"] is None
        else:
            assert entry["block"]["n_items"] == {"0": ds["counts"]["0"]["test"]["blocks"]}
        if method.endswith("-knn"):
            # 9 train blocks (3 songs x 3 whole blocks) hold fewer than 51 neighbours; every K is still reported
            assert [p["k"] for p in entry["accuracy_vs_k"]] == list(K_VALUES)
    counts = ds["counts"]["0"]
    assert {split: counts[split]["songs"] for split in counts} == {"train": 3, "val": 3, "test": 3}
    assert counts["test"]["blocks"] == 9  # 4 s = 125 frames = 3 whole blocks of 32
    stages = {t["stage"] for t in ds["timings"]["stages"]}
    assert {"train crnn", "train attcrnn", "train voice", "test features", "classify", "embed train attcrnn",
            "index attcrnn (none)", "search attcrnn", "embed train crnn", "index voice (lda-wccn)", "ge2e-knn",
            "classify clean voice stems", "baseline mfcc-logreg", "baseline mfcc-logreg-clean"} <= stages
    assert doc["config"]["methods"] == list(DEFAULT_METHODS) and doc["config"]["k"] == 11
    assert "synthetic: album split" in stdout and "Attention-CRNN-KNN" in stdout
    assert f"{out / 'report.html'}" in stdout
    assert stdout.rstrip().splitlines()[-1].startswith("evaluated 1 dataset(s) x 1 seed(s), 10 method(s): "
                                                      "3 model(s) trained, 0 reused, in ")


def test_markdown_has_the_table1_layout(evaluated):
    text = (evaluated[0] / "report.md").read_text()
    table1 = text.split("## Table 1 — song level, paper datasets", 1)[1].split("\n## ", 1)[0]
    header = next(line for line in table1.splitlines() if line.startswith("| "))
    assert all(column in header for column in PAPER_COLUMNS)
    for row in ("| CRNN |", "| Attention-CRNN |", "| Attention-CRNN-KNN |"):
        assert row in table1
    assert "Table 1b — song level, other datasets (synthetic)" in text
    assert "Table 2b — block level, other datasets (synthetic)" in text


def test_rerun_with_the_same_out_does_not_retrain(evaluated, corpus, capsys):
    out = evaluated[0]
    before = _model_files(out)
    manifest = (out / "runs/synthetic/seed-0/attcrnn/manifest.json")
    n_vectors = json.loads(manifest.read_text())["index"]["n_vectors"]
    code, stdout, _ = run_cli(capsys, "evaluate", "--dataset", f"synthetic={corpus}", *FAST, "--out", out)
    assert code == 0
    assert "0 model(s) trained, 3 reused" in stdout
    assert _model_files(out) == before  # not even rewritten
    assert json.loads(manifest.read_text())["index"]["n_vectors"] == n_vectors  # no block stored twice
    stages = json.loads((out / "report.json").read_text())["datasets"]["synthetic"]["timings"]["stages"]
    train_seconds = [t["seconds"] for t in stages if t["stage"].startswith("train ")]
    assert len(train_seconds) == 3 and max(train_seconds) < 5.0


def test_json_prints_the_report_and_home_models_are_reused(evaluated, corpus, tmp_path, capsys):
    home = evaluated[0] / "runs/synthetic/seed-0/attcrnn"
    out = tmp_path / "again"
    code, stdout, _ = run_cli(capsys, "evaluate", "--dataset", f"synthetic={corpus}", *FAST, "--methods",
                              "attcrnn", "--home", home, "--out", out, "--json")
    assert code == 0
    doc = json.loads(stdout)
    assert doc == json.loads((out / "report.json").read_text())
    assert list(doc["datasets"]["synthetic"]["methods"]) == ["attcrnn"]
    assert _model_files(out)["runs/synthetic/seed-0/attcrnn/models/attcrnn/model.safetensors"][1] == \
        (home / "models/attcrnn/model.safetensors").read_bytes()
    assert (out / "runs/synthetic/seed-0/attcrnn/models/attcrnn/model.json").read_bytes() == \
        (home / "models/attcrnn/model.json").read_bytes()  # copied, not retrained


def test_a_dataset_failing_in_training_is_reported_and_the_others_complete(evaluated, corpus, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(evaluated[0], out)  # its synthetic models are reused, so only "broken" trains
    broken = tmp_path / "broken"
    shutil.copytree(corpus, broken)
    ds = load_dataset(broken, seed=0, split="album")
    victim = ds.singers()[0]
    for track in ds.select("train"):
        if track.singer == victim:
            track.path.write_bytes(b"not audio at all")
    code, stdout, stderr = run_cli(capsys, "evaluate", "--dataset", f"synthetic={corpus}", "--dataset",
                                   f"broken={broken}", *FAST, "--methods", "attcrnn,attcrnn-knn", "--out", out)
    assert code == 1
    assert stderr.startswith("Error: 1 dataset(s) failed (broken: seed 0: validation singer(s) ")
    assert f"the reports in {out} record it" in stderr
    doc = json.loads((out / "report.json").read_text())
    validate_report(doc)
    assert doc["datasets"]["synthetic"]["error"] is None
    assert set(doc["datasets"]["synthetic"]["methods"]) == {"attcrnn", "attcrnn-knn"}
    assert "no usable training track" in doc["datasets"]["broken"]["error"]
    assert doc["datasets"]["broken"]["methods"] == {}
    assert "broken: dataset failed" in (out / "report.md").read_text()
    assert "dataset failed" in stdout


def test_a_model_is_reused_only_when_everything_matches(evaluated, corpus):
    model_dir = evaluated[0] / "runs/synthetic/seed-0/crnn/models/crnn"
    tracks = load_dataset(corpus, seed=0, split="album").tracks
    feature_cfg = FeatureConfig()
    fingerprint = data_fingerprint(tracks, feature_cfg=feature_cfg, cache_dir=evaluated[0] / "cache/features")
    same = dict(model_cfg=ModelConfig(kind="crnn"), feature_cfg=feature_cfg, fingerprint=fingerprint,
                precision="fp32", train_cfg=TrainConfig(epochs=1, batch_size=16, seed=0, workers=3))  # workers: no
    assert mismatch(model_dir, **same) is None
    assert "attcrnn" in mismatch(model_dir, **{**same, "model_cfg": ModelConfig(kind="attcrnn")})
    assert "aam" in mismatch(model_dir, **{**same, "model_cfg": ModelConfig(kind="crnn", head="aam")})
    assert "front end" in mismatch(model_dir, **{**same, "front_end": "vocals@x"})
    assert "training settings" in mismatch(model_dir, **{**same, "train_cfg": TrainConfig(epochs=1, batch_size=16,
                                                                                          remix=True)})
    assert "training settings" in mismatch(model_dir, **{**same, "train_cfg": TrainConfig(epochs=2, batch_size=16)})
    assert "bf16 requested" in mismatch(model_dir, **{**same, "precision": "bf16"})
    assert "other data" in mismatch(model_dir, **{**same, "fingerprint": "0" * 16})
    other_split = load_dataset(corpus, seed=1, split="song").tracks
    other = data_fingerprint(other_split, feature_cfg=feature_cfg, cache_dir=evaluated[0] / "cache/features")
    assert other != fingerprint and "other data" in mismatch(model_dir, **{**same, "fingerprint": other})
    assert mismatch(model_dir.parent / "nothing", **same) == "no trained model yet"


# --- errors before any training -------------------------------------------------------------

def test_missing_dataset_fails_before_training(corpus, tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, stderr = run_cli(capsys, "evaluate", "--dataset", f"synthetic={corpus}", "--dataset",
                                   f"artist20={tmp_path / 'nowhere'}", *FAST, "--out", out)
    assert code == 1 and stdout == ""
    assert stderr == f"Error: dataset 'artist20': {tmp_path / 'nowhere'}: no such directory\n"
    assert not (out / "runs").exists()


def test_unreadable_dataset_fails_before_training(corpus, tmp_path, capsys):
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("no audio here")
    out = tmp_path / "out"
    code, _, stderr = run_cli(capsys, "evaluate", "--dataset", f"synthetic={corpus}", "--dataset",
                              f"singer32={junk}", *FAST, "--out", out)
    assert code == 1
    assert stderr.startswith("Error: dataset 'singer32': ") and stderr.count("\n") == 1
    assert not (out / "runs").exists()


@pytest.mark.parametrize("args, message", [
    (["--methods", "crnn,knn"], "unknown method 'knn'; choose from crnn,attcrnn,attcrnn-knn,crnn-knn,voice,"),
    (["--methods", "crnn,crnn"], "'crnn,crnn' names a method twice"),
    (["--seeds", "0,x"], "'0,x' is not a comma list of integers"),
    (["--dataset", "artist20"], "'artist20': expected KEY=PATH"),
    (["--dataset", "Artist20=/data"], "key 'Artist20' must be lower-case letters"),
    (["--dataset", "synthetic=/a", "--dataset", "synthetic=/b"], "dataset key 'synthetic' is given twice"),
    (["--k", "0"], "0 is not in the range x>=1"),
])
def test_bad_options_exit_2(tmp_path, capsys, args, message):
    if not any(a == "--dataset" for a in args):
        args = ["--dataset", f"synthetic={tmp_path}", *args]
    code, _, stderr = run_cli(capsys, "evaluate", *args, "--out", tmp_path / "out")
    assert code == 2
    assert message in stderr
    assert not (tmp_path / "out").exists()


# --- the decision arithmetic -----------------------------------------------------------------

SINGERS = ("ann", "bob", "cy")


def _blocks(song_label: list[int], blocks_per_song: list[int]) -> EvalBlocks:
    block_song = np.repeat(np.arange(len(song_label)), blocks_per_song)
    return EvalBlocks(tracks=tuple(range(len(song_label))), song_label=np.array(song_label, dtype=np.int64),
                      block_song=block_song, block_start=np.zeros(block_song.size, np.int64), features=(), skipped=())


def test_softmax_run_maps_model_singers_and_votes_songs():
    test = _blocks([0, 2], [3, 2])
    # the model knows only bob and cy (column 0 = bob, 1 = cy)
    logits = np.array([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0], [0.0, 5.0], [0.0, 4.0]], dtype=np.float32)
    run = softmax_run("crnn", 0, logits, model_singers=("bob", "cy"), singers=SINGERS, test=test)
    assert run.block.y_pred.tolist() == ["bob", "cy", "bob", "cy", "cy"]
    assert run.song.y_pred.tolist() == ["bob", "cy"] and run.song.y_true.tolist() == ["ann", "cy"]


def test_knn_run_reports_every_k_from_one_search_with_the_decision_rule():
    rng = np.random.default_rng(3)
    test = _blocks([0, 1, 2, 1], [4, 3, 5, 2])
    n = test.n_blocks
    index_singers = ("cy", "ann", "bob")  # the index's own label order differs from the dataset's
    labels = rng.integers(-1, 3, size=(n, 51))
    labels[:, 0] = rng.integers(0, 3, size=n)  # every block has a nearest neighbour
    sims = np.sort(rng.random((n, 51)).astype(np.float32), axis=1)[:, ::-1]
    run = knn_run("attcrnn-knn", 7, labels, sims, index_singers=index_singers, singers=SINGERS, test=test,
                  k=11, k_values=K_VALUES)
    to_dataset = np.array([2, 0, 1, -1])
    mapped = to_dataset[labels]
    assert [p.k for p in run.accuracy_vs_k] == list(K_VALUES)
    for point in run.accuracy_vs_k:
        votes = knn_block_votes(mapped, sims, k=point.k, n_classes=3)
        assert point.block_accuracy == pytest.approx(np.mean(votes.pred == test.block_label))
    votes = knn_block_votes(mapped, sims, k=11, n_classes=3)
    assert run.block.y_pred.tolist() == [SINGERS[p] for p in votes.pred]
    starts = np.r_[0, np.cumsum([4, 3, 5, 2])]
    expected = [SINGERS[song_vote(votes.pred[a:b], votes.score[a:b], n_classes=3)[0]]
                for a, b in zip(starts[:-1], starts[1:])]
    assert run.song.y_pred.tolist() == expected
    at_11 = next(p for p in run.accuracy_vs_k if p.k == 11)
    assert at_11.song_accuracy == pytest.approx(np.mean(run.song.y_pred == run.song.y_true))


def test_config_needs_only_the_models_its_methods_use():
    assert EvaluateConfig(methods=("mfcc-logreg", "ge2e-knn")).model_names == ()
    assert EvaluateConfig(methods=("attcrnn-knn", "mfcc-logreg")).model_names == ("attcrnn",)
    assert EvaluateConfig().model_names == ("crnn", "attcrnn", "voice") and EvaluateConfig().search_k == 51
    # the back-end ablation reuses the voice model; every other ablation trains its own
    assert EvaluateConfig(methods=("voice-knn", "voice-no-backend-knn")).model_names == ("voice",)
    assert EvaluateConfig(methods=ABLATION_METHODS).model_names == ("voice", *(
        r for r in ABLATION_RECIPES if r != "voice-no-backend"))
    assert EvaluateConfig(k=70).search_k == 70
    assert _rule_for_seeds("album split 4/1/1 per singer (paper), seed 0") == \
        "album split 4/1/1 per singer (paper), one split per seed"


def test_reproduce_script_needs_one_of_the_paper_datasets(tmp_path):
    import subprocess

    script = Path(__file__).resolve().parents[1] / "scripts" / "reproduce_table1.sh"
    done = subprocess.run(["bash", str(script), str(tmp_path), str(tmp_path / "out")], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr == (f"error: none of {tmp_path}/artist20, {tmp_path}/singer32, {tmp_path}/singer60 "
                           "exists\n")
    assert not (tmp_path / "out").exists()


def test_ablation_methods_are_recipes_that_flip_one_lever():
    from singerid.cli.evaluate import ABLATION_NAMES, METHOD_NAMES

    assert METHOD_NAMES == DEFAULT_METHODS and ABLATION_NAMES == ABLATION_METHODS
    assert tuple(f"{r}-knn" for r in ABLATION_RECIPES) == ABLATION_METHODS
    full = RECIPES["voice"].levers()
    for name in ABLATION_RECIPES:
        flipped = {k for k, v in RECIPES[name].levers().items() if v != full[k]}
        assert len(flipped) == 1, (name, flipped)
    paper = {"input": "mix", "remix": False, "gain_tilt": False, "album_adversary": 0.0, "head": "softmax",
             "backend": "none"}
    assert RECIPES["crnn"].levers() == RECIPES["attcrnn"].levers() == paper  # the paper's rows stay faithful
