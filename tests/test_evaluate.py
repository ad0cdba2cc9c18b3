"""`singerid evaluate` end to end on a tiny synthetic corpus (reports, predictions.csv, stage lines, reuse),
its options and errors, and its decision arithmetic."""

from __future__ import annotations

import csv
import json
import re
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
from singerid.evaluation import K_VALUES, KNN_METHODS, validate_report
from singerid.evaluation.results import ABLATION_METHODS, DEFAULT_METHODS
from singerid.pipeline.evaluate import EvaluateConfig, _rule_for_seeds
from singerid.pipeline.evaluate_methods import EvalBlocks, knn_run, softmax_run
from singerid.pipeline.evaluate_models import mismatch
from singerid.records import Track

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
    """One evaluation of every method on the tiny corpus, stderr piped: (out dir, exit code, stdout, stderr)."""
    from click.testing import CliRunner

    from singerid.cli import cli

    out = tmp_path_factory.mktemp("evaluate") / "out"
    result = CliRunner().invoke(cli, ["evaluate", "--data", f"synthetic={corpus}", *FAST, "--out", str(out)])
    return out, result.exit_code, result.stdout + (f"\n{result.exception!r}" if result.exception else ""), \
        result.stderr


def _model_files(out: Path) -> dict[str, tuple[int, bytes]]:
    files = sorted(out.glob("runs/synthetic/seed-0/*/models/*/*"))
    return {str(p.relative_to(out)): (p.stat().st_mtime_ns, p.read_bytes()) for p in files}


# --- the whole command ------------------------------------------------------------------------

def test_writes_three_reports_with_every_method(evaluated):
    out, code, stdout, _ = evaluated
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
    assert "synthetic: album split 1/1/1 per singer" in stdout and "Attention-CRNN-KNN" in stdout
    assert "split 4/1/1 per singer" not in stdout + (out / "report.md").read_text()  # 3 albums: not the paper's
    assert f"{out / 'report.html'}" in stdout
    assert stdout.rstrip().splitlines()[-1].startswith("evaluated 1 dataset(s) x 1 seed(s), 10 method(s): "
                                                      "3 model(s) trained, 0 reused, in ")


def test_predictions_csv_has_one_row_per_test_song_for_every_method(evaluated):
    out = evaluated[0]
    doc = json.loads((out / "report.json").read_text())
    for method, entry in doc["datasets"]["synthetic"]["methods"].items():
        assert entry["predictions"] == {"0": f"predictions/synthetic/seed-0/{method}.csv"}
        with open(out / entry["predictions"]["0"], newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert len(rows) == 3 and {r["method"] for r in rows} == {method}
        assert all(Path(r["path"]).is_file() and r["song"] and r["true_singer"] for r in rows)
        right = np.mean([r["predicted"] == r["true_singer"] for r in rows])
        assert right == pytest.approx(entry["song"]["accuracy"]["mean"])
        assert [r["correct"] == "1" for r in rows] == [r["predicted"] == r["true_singer"] for r in rows]
        if method.startswith("mfcc-logreg"):
            assert {r["vote_share"] for r in rows} == {""} and all(0 < float(r["probability"]) <= 1 for r in rows)
            continue
        assert sum(int(r["n_blocks"]) for r in rows) == entry["block"]["n_items"]["0"]
        assert all(0.3333 <= float(r["vote_share"]) <= 1.0 for r in rows)  # the winner has at least 1 of 3 blocks
        if method in KNN_METHODS:
            assert all(-1.0 <= float(r["similarity"]) <= 1.0001 for r in rows) and {r["probability"] for r in rows} == {""}
        else:
            assert all(0 < float(r["probability"]) <= 1 for r in rows) and {r["similarity"] for r in rows} == {""}


def test_piped_stderr_gets_one_line_per_stage_and_method(evaluated):
    lines = evaluated[3].splitlines()
    mine = [line for line in lines if line.startswith("evaluate synthetic seed 0: ")]
    for stage in ("train crnn in ", "train attcrnn in ", "train voice in ", "test features in ", "classify in ",
                  "embed train attcrnn in ", "index attcrnn (none) in ", "search attcrnn in ", "ge2e-knn in ",
                  "baseline mfcc-logreg in "):
        assert any(line.startswith(f"evaluate synthetic seed 0: {stage}") for line in mine), stage
    for method in DEFAULT_METHODS:
        assert any(line.startswith(f"evaluate synthetic seed 0: {method} evaluated: song accuracy ") for line in mine)
    assert mine[-1].startswith("evaluate synthetic seed 0: 10 methods in ")
    assert any(line.startswith("train epoch 1/1: ") for line in lines)  # the stages' own lines come too


def test_old_spellings_work_with_one_deprecation_line_each(corpus, tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, stderr = run_cli(capsys, "evaluate", "--dataset", f"synthetic={tmp_path / 'nowhere'}",
                                   "--split", "album", "--home", tmp_path, *FAST, "--out", out)
    assert code == 1 and stdout == ""
    assert stderr.splitlines() == [
        "Deprecated: --dataset is now --data (the old spelling goes in the next release)",
        "Deprecated: --home is now --reuse-home (the old spelling goes in the next release)",
        "Deprecated: --split is now --split-rule (the old spelling goes in the next release)",
        f"Error: dataset 'synthetic': {tmp_path / 'nowhere'}: no such directory"]
    code, _, stderr = run_cli(capsys, "evaluate", "--data", f"synthetic={tmp_path / 'nowhere'}",
                              "--split-rule", "album", "--reuse-home", tmp_path, *FAST, "--out", out)
    assert code == 1 and stderr == f"Error: dataset 'synthetic': {tmp_path / 'nowhere'}: no such directory\n"


def test_markdown_leads_with_our_numbers_when_no_paper_dataset_ran(evaluated):
    text = (evaluated[0] / "report.md").read_text()
    assert "## Table 1" not in text and "A20" not in text  # no all-dash paper tables
    titles = [line for line in text.splitlines() if line.startswith("## ")]
    assert titles[:2] == ["## Song level — synthetic", "## Block level — synthetic"]
    song = text.split("## Song level — synthetic", 1)[1].split("\n## ", 1)[0]
    header = next(line for line in song.splitlines() if line.startswith("| "))
    assert header == ("| Method | Source | Accuracy synthetic | Precision synthetic | Recall synthetic "
                      "| F1 synthetic |")
    for row in ("| CRNN | ours |", "| Attention-CRNN | ours |", "| Attention-CRNN-KNN | ours |",
                "| Voice-AttCRNN-KNN (ours) † | ours |"):
        assert row in song
    assert "- seed 0: [CRNN](predictions/synthetic/seed-0/crnn.csv)" in text  # the per-song section links


def test_rerun_with_the_same_out_reports_the_original_training_time(evaluated, corpus, capsys):
    out = evaluated[0]
    before = _model_files(out)
    first = json.loads((out / "report.json").read_text())["datasets"]["synthetic"]["timings"]
    manifest = (out / "runs/synthetic/seed-0/attcrnn/manifest.json")
    n_vectors = json.loads(manifest.read_text())["index"]["n_vectors"]
    code, stdout, stderr = run_cli(capsys, "evaluate", "--data", f"synthetic={corpus}", *FAST, "--out", out)
    assert code == 0
    assert "0 model(s) trained, 3 reused (trained earlier in " in stdout
    assert _model_files(out) == before  # not even rewritten
    assert json.loads(manifest.read_text())["index"]["n_vectors"] == n_vectors  # no block stored twice
    timings = json.loads((out / "report.json").read_text())["datasets"]["synthetic"]["timings"]
    train = {t["stage"]: t for t in timings["stages"] if t["stage"].startswith("train ")}
    assert set(train) == {"train crnn", "train attcrnn", "train voice"}
    for stage, entry in train.items():
        card = json.loads(next((out / f"runs/synthetic/seed-0/{stage.removeprefix('train ')}").glob(
            "models/*/model.json")).read_text())
        assert entry["reused"] is True and card["training"]["seconds"] > 0.0
        assert entry["seconds"] == pytest.approx(card["training"]["seconds"])
        assert f"evaluate synthetic seed 0: {stage}: reused (found in OUT; trained in " in stderr
    first_train = [t for t in first["stages"] if t["stage"].startswith("train ")]
    assert not any(t["reused"] for t in first_train)  # the first run trained them, in wall time
    assert timings["total_seconds"] == pytest.approx(sum(t["seconds"] for t in timings["stages"] if not t["reused"]))
    assert re.search(r"\| train attcrnn \| – \| \d+\.\d\* \| 0\.0 \|", (out / "report.md").read_text())


def test_json_prints_a_summary_and_reuse_home_models_are_copied(evaluated, corpus, tmp_path, capsys):
    home = evaluated[0] / "runs/synthetic/seed-0/attcrnn"
    out = tmp_path / "again"
    code, stdout, stderr = run_cli(capsys, "evaluate", "--data", f"synthetic={corpus}", *FAST, "--methods",
                                   "attcrnn", "--reuse-home", home, "--out", out, "--json", "-q")
    assert code == 0 and stderr == ""  # -q: no stage lines
    summary = json.loads(stdout)
    doc = json.loads((out / "report.json").read_text())
    assert summary["reports"] == {"json": str(out / "report.json"), "markdown": str(out / "report.md"),
                                  "html": str(out / "report.html")}
    assert summary["predictions"] == [str(out / "predictions/synthetic/seed-0/attcrnn.csv")]
    entry = summary["datasets"]["synthetic"]
    assert entry["error"] is None and entry["seeds"] == [0] and list(entry["methods"]) == ["attcrnn"]
    assert entry["methods"]["attcrnn"]["song_accuracy"] == doc["datasets"]["synthetic"]["methods"]["attcrnn"][
        "song"]["accuracy"]["mean"]
    card = json.loads((home / "models/attcrnn/model.json").read_text())
    assert summary["models"] == [{"kind": "attcrnn", "source": "copied", "train_seconds": card["training"]["seconds"],
                                  "model_dir": str(out / "runs/synthetic/seed-0/attcrnn/models/attcrnn")}]
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
    code, stdout, stderr = run_cli(capsys, "evaluate", "--data", f"synthetic={corpus}", "--data",
                                   f"broken={broken}", *FAST, "--methods", "attcrnn,attcrnn-knn", "--out", out)
    assert code == 1
    assert stderr.splitlines()[-1].startswith("Error: 1 dataset(s) failed (broken: seed 0: validation singer(s) ")
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
    code, stdout, stderr = run_cli(capsys, "evaluate", "--data", f"synthetic={corpus}", "--data",
                                   f"artist20={tmp_path / 'nowhere'}", *FAST, "--out", out)
    assert code == 1 and stdout == ""
    assert stderr == f"Error: dataset 'artist20': {tmp_path / 'nowhere'}: no such directory\n"
    assert not (out / "runs").exists()


def test_unreadable_dataset_fails_before_training(corpus, tmp_path, capsys):
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("no audio here")
    out = tmp_path / "out"
    code, _, stderr = run_cli(capsys, "evaluate", "--data", f"synthetic={corpus}", "--data",
                              f"singer32={junk}", *FAST, "--out", out)
    assert code == 1
    assert stderr.startswith("Error: dataset 'singer32': ") and stderr.count("\n") == 1
    assert not (out / "runs").exists()


@pytest.mark.parametrize("args, message", [
    (["--methods", "crnn,knn"], "unknown method 'knn'; choose from crnn,attcrnn,attcrnn-knn,crnn-knn,voice,"),
    (["--methods", "crnn,crnn"], "'crnn,crnn' names a method twice"),
    (["--seeds", "0,x"], "'0,x' is not a comma list of integers"),
    (["--data", "artist20"], "'artist20': expected KEY=PATH"),
    (["--data", "Artist20=/data"], "key 'Artist20' must be lower-case letters"),
    (["--data", "synthetic=/a", "--data", "synthetic=/b"], "dataset key 'synthetic' is given twice"),
    (["--data", "synthetic=/a", "--dataset", "synthetic=/b"], "dataset key 'synthetic' is given twice"),
    (["--k", "0"], "0 is not in the range x>=1"),
    (["--split", "song", "--split-rule", "album"], "Error: --split song and --split-rule album disagree"),
    (["--device", "tpu"], "Error: unknown device 'tpu': use 'cpu' or 'cuda'"),
    ([], "Missing option '--data'"),
])
def test_bad_options_exit_2(tmp_path, capsys, args, message):
    if args and not any(a in ("--data", "--dataset") for a in args):
        args = ["--data", f"synthetic={tmp_path}", *args]
    code, _, stderr = run_cli(capsys, "evaluate", *args, "--out", tmp_path / "out")
    assert code == 2
    assert message in stderr
    assert not (tmp_path / "out").exists()


# --- the decision arithmetic -----------------------------------------------------------------

SINGERS = ("ann", "bob", "cy")


def _blocks(song_label: list[int], blocks_per_song: list[int]) -> EvalBlocks:
    block_song = np.repeat(np.arange(len(song_label)), blocks_per_song)
    tracks = tuple(Track(path=Path(f"/d/song{i}.flac"), singer=SINGERS[label], song_id=f"song{i}", split="test",
                         album="a") for i, label in enumerate(song_label))
    return EvalBlocks(tracks=tracks, song_label=np.array(song_label, dtype=np.int64),
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


def test_song_details_carry_vote_share_similarity_and_probability():
    test = _blocks([0, 1], [3, 2])
    labels = np.array([[0, 1], [0, 0], [1, 1], [2, 2], [1, -1]])  # index order = dataset order
    sims = np.array([[0.9, 0.1], [0.7, 0.6], [0.5, 0.4], [0.8, 0.2], [0.3, 0.0]], dtype=np.float32)
    run = knn_run("attcrnn-knn", 0, np.column_stack([labels, labels[:, :1]]), np.column_stack([sims, sims[:, :1]]),
                  index_singers=SINGERS, singers=SINGERS, test=test, k=1, k_values=(1,))
    assert run.song.y_pred.tolist() == ["ann", "cy"]
    assert run.songs.song_ids == ("song0", "song1") and run.songs.paths == ("/d/song0.flac", "/d/song1.flac")
    assert run.songs.n_blocks.tolist() == [3, 2]
    assert run.songs.vote_share.tolist() == pytest.approx([2 / 3, 0.5])  # song1: 1-1, cy's 0.8 beats bob's 0.3
    assert run.songs.similarity.tolist() == pytest.approx([(0.9 + 0.7 + 0.5) / 3, (0.8 + 0.3) / 2])
    assert run.songs.probability is None
    logits = np.log(np.array([[0.6, 0.4], [0.2, 0.8], [0.7, 0.3], [0.1, 0.9], [0.5, 0.5]], dtype=np.float32))
    soft = softmax_run("crnn", 0, logits, model_singers=("ann", "bob"), singers=SINGERS, test=test)
    assert soft.song.y_pred.tolist() == ["ann", "bob"]
    assert soft.songs.vote_share.tolist() == pytest.approx([2 / 3, 0.5])  # song1: bob 0.9 vs ann 0.5 (a tie)
    assert soft.songs.probability.tolist() == pytest.approx([(0.6 + 0.2 + 0.7) / 3, (0.9 + 0.5) / 2])


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


def test_cuda_without_a_gpu_is_refused_before_anything_runs(corpus, tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA; the refusal is for machines without it")
    code, stdout, stderr = run_cli(capsys, "evaluate", "--data", f"synthetic={corpus}", "--device", "cuda",
                                   *FAST, "--out", tmp_path / "out")
    assert code == 2 and stdout == "" and not (tmp_path / "out").exists()
    assert stderr.startswith("Error: device 'cuda' requested but CUDA is not available")
