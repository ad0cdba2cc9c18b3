"""One option vocabulary, visible progress and -q, through the real CLI on a small generated corpus.

The module trains once (3 singers x 3 albums x 1 song of 4 s, 2 epochs of the paper's CRNN on
the mix) and then embeds and indexes it, all through ``singerid.cli.main`` in this process.
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from singerid.cli import COMMANDS, cli, main
from singerid.cli.common import DEPRECATED_SPLIT
from singerid.datasets.split import album_rule, split_shape
from conftest import write_tone

pytestmark = pytest.mark.usefixtures("one_torch_thread_module", "faiss_threads_kept")

OWNED = ("synth-corpus", "scan", "check-audio", "separate", "train", "embed-corpus", "build-index")
CORPUS = ["--singers", "3", "--albums", "3", "--songs-per-album", "1", "--seconds", "4", "--format", "flac",
          "--workers", "1", "--seed", "5"]


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return self.err.splitlines()


def run(*args: str) -> Run:
    """``singerid ARGS`` through the real entry point (its error boundary), stdout and stderr apart."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exit_info:
        main(list(args))
    return Run(exit_info.value.code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="module")
def faiss_threads_kept():
    import faiss

    before = faiss.omp_get_max_threads()
    yield
    faiss.omp_set_num_threads(before)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, Run]:
    out = tmp_path_factory.mktemp("cli_options") / "corpus"
    made = run("synth-corpus", str(out), *CORPUS, "--json")
    assert made.code == 0, made.err
    return out, made


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory) -> tuple[Path, Run]:
    """A home with a trained crnn; the run used the old spelling ``--split album``."""
    home = tmp_path_factory.mktemp("cli_options_home")
    trained = run("train", str(corpus[0]), "--model", "crnn", "--recipe", "paper", "--home", str(home),
                  "--epochs", "2", "--batch-size", "8", "--threads", "1", "--split", "album", "--json")
    assert trained.code == 0, trained.err
    return home, trained


@pytest.fixture(scope="module")
def indexed(corpus, trained) -> tuple[Path, Run, Run]:
    home = trained[0]
    embedded = run("embed-corpus", str(corpus[0]), "--home", str(home), "--model", "crnn", "--split", "train",
                   "--split-rule", "album", "--threads", "1", "--device", "cpu", "--json")
    assert embedded.code == 0, embedded.err
    built = run("build-index", "--home", str(home), "--threads", "1", "--json")
    assert built.code == 0, built.err
    return home, embedded, built


# --- help ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_has_help_with_an_example(name):
    assert cli.get_command(None, name) is not None, f"{name} is listed but has no command"  # type: ignore[arg-type]
    shown = run(name, "--help")
    assert shown.code == 0 and "Example:" in shown.out, shown.out


@pytest.mark.parametrize("name", ["train", "embed-corpus", "separate"])
def test_torch_commands_take_threads_and_device(name):
    text = run(name, "--help").out
    assert "--threads" in text and "--device cpu|cuda" in text


def test_build_index_takes_threads_and_workers_always_mean_processes():
    assert "--threads" in run("build-index", "--help").out
    for name in ("train", "synth-corpus"):
        assert "Worker processes" in run(name, "--help").out or "worker processes" in run(name, "--help").out


def test_the_old_split_spelling_is_hidden_from_help():
    assert "--split-rule [album|lists|song]" in run("train", "--help").out
    assert "--split [" not in run("train", "--help").out
    assert "--split [train|val|test|all]" in run("scan", "--help").out


# --- JSON on every command -------------------------------------------------------------------------

def test_synth_corpus_json(corpus):
    doc = json.loads(corpus[1].out)
    assert doc["songs"] == 9 and doc["fresh"] is True and doc["albums_by_split"] == {"train": 3, "val": 3, "test": 3}


def test_scan_json_and_the_subset_it_lists(corpus):
    doc = json.loads(run("scan", str(corpus[0]), "--json").out)
    assert doc["n_songs"] == 9 and "songs" not in doc
    test = run("scan", str(corpus[0]), "--split", "test", "--json")
    doc = json.loads(test.out)
    assert test.err == "" and doc["split"] == "test" and len(doc["songs"]) == 3
    assert {s["split"] for s in doc["songs"]} == {"test"}


def test_check_audio_json(tmp_path):
    doc = json.loads(run("check-audio", str(write_tone(tmp_path / "a.wav", seconds=3.0)), "--json").out)
    assert doc[0]["ok"] is True and doc[0]["blocks"] >= 2


def test_separate_json_and_its_progress_line(tmp_path):
    song = write_tone(tmp_path / "song.wav", seconds=2.0)
    done = run("separate", str(song), "--out", str(tmp_path / "out"), "--stems", "vocals", "--threads", "1", "--json")
    assert done.code == 0, done.err
    assert json.loads(done.out)["files"][0]["ok"] is True
    assert [line for line in done.err_lines if line.startswith("separate: 1/1 file, 2.0 s of audio in ")]


def test_train_embed_and_build_json(trained, indexed):
    doc = json.loads(trained[1].out)
    assert doc["model"] == "crnn" and doc["epochs_run"] == 2 and doc["split_rule"].startswith("album split 1/1/1")
    doc = json.loads(indexed[1].out)
    assert doc["split"] == "train" and doc["added"] == 3
    doc = json.loads(indexed[2].out)
    assert doc["type"] == "flat" and doc["n_vectors"] > 0


# --- progress: lines when not a terminal, nothing with -q -------------------------------------------

def test_train_prints_the_caching_pass_and_one_line_per_epoch(trained):
    err = trained[1].err_lines
    assert err[0] == DEPRECATED_SPLIT and err.count(DEPRECATED_SPLIT) == 1
    assert [line for line in err if line.startswith("cache features: 6/6 songs, 6 computed, 0 from the cache")]
    epochs = [line for line in err if line.startswith("train epoch ")]
    assert [line.split(":")[0] for line in epochs] == ["train epoch 1/2", "train epoch 2/2"]
    assert all(", val acc " in line for line in epochs)


def test_embed_corpus_and_build_index_print_their_stages(indexed):
    embed_lines = indexed[1].err_lines
    assert len(embed_lines) == 1 and embed_lines[0].startswith("embed-corpus: 3/3 songs, ")
    assert " blocks in " in embed_lines[0]
    build_lines = indexed[2].err_lines
    assert build_lines[0].startswith("build-index: read ") and build_lines[-1].startswith("build-index: flat index")


def test_synth_corpus_prints_its_line(corpus):
    assert corpus[1].err_lines[0].startswith("synth-corpus: 9/9 songs, 36 s of audio in ")


@pytest.mark.parametrize("where", ["before", "after"])
def test_quiet_before_or_after_the_command_leaves_only_results(indexed, corpus, where):
    home = str(indexed[0])
    for args in (["build-index", "--home", home], ["embed-corpus", str(corpus[0]), "--home", home, "--threads", "1"],
                 ["synth-corpus", str(corpus[0]), *CORPUS]):
        done = run("-q", *args) if where == "before" else run(*args, "-q")
        assert done.code == 0 and done.err == "", (args, done.err)
        assert done.out.strip()  # the result is still printed


def test_verbose_after_the_command_shows_info_logs(indexed):
    done = run("build-index", "--home", str(indexed[0]), "-v")
    assert "INFO singerid." in done.err and "build-index: read " in done.err


# --- -q also silences warnings; the old --split spelling ---------------------------------------------

@pytest.fixture
def folder_with_a_stray_folder(tmp_path) -> Path:
    for singer in ("ann", "bob"):
        for song in range(3):
            (tmp_path / singer).mkdir(exist_ok=True)
            (tmp_path / singer / f"s{song}.wav").write_bytes(b"RIFF")
    (tmp_path / "notes").mkdir()
    return tmp_path


def test_warnings_show_by_default_and_vanish_with_quiet(folder_with_a_stray_folder):
    shown = run("scan", str(folder_with_a_stray_folder), "--split-rule", "song")
    assert shown.code == 0 and "no audio files, not a singer folder; skipped" in shown.err
    quiet = run("scan", str(folder_with_a_stray_folder), "--split-rule", "song", "-q")
    assert quiet.code == 0 and quiet.err == "" and quiet.out == shown.out


def test_scan_old_split_spelling_works_with_one_line(corpus):
    old = run("scan", str(corpus[0]), "--split", "song")
    new = run("scan", str(corpus[0]), "--split-rule", "song")
    assert old.code == new.code == 0
    assert old.err == DEPRECATED_SPLIT + "\n" and new.err == ""
    assert old.out == new.out and "song split" in old.out


def test_split_and_split_rule_that_disagree_are_refused(corpus):
    done = run("scan", str(corpus[0]), "--split", "song", "--split-rule", "album")
    assert done.code == 2
    assert done.err_lines[-1] == "Error: --split song and --split-rule album disagree; give --split-rule only"


def test_an_unavailable_device_is_refused_in_one_line(corpus, tmp_path):
    import torch

    done = run("embed-corpus", str(corpus[0]), "--home", str(tmp_path), "--device", "tpu")
    assert done.code == 2 and done.err == "Error: unknown device 'tpu': use 'cpu' or 'cuda'\n"
    if not torch.cuda.is_available():
        done = run("embed-corpus", str(corpus[0]), "--home", str(tmp_path), "--device", "cuda")
        assert done.code == 2 and done.err.startswith("Error: device 'cuda' requested but CUDA is not available")


# --- the split rule says what the split does (4/1/1 only with 6 albums) ----------------------------

def test_scan_of_a_three_album_corpus_says_1_1_1(corpus):
    out = run("scan", str(corpus[0])).out.splitlines()
    assert out[2] == "split:   album split 1/1/1 per singer (paper; 4/1/1 needs 6 albums, here 3 each), seed 0"
    assert any(line.split()[1:] == ["1", "1", "1", "3"] for line in out if line.startswith("singer_"))


@pytest.mark.parametrize("n_albums, shape", [([6, 6], "4/1/1"), ([3, 3, 3], "1/1/1"), ([4], "2/1/1"),
                                             ([6, 6, 3], "4/1/1 for 2 singers, 1/1/1 for 1 singer")])
def test_split_shape(n_albums, shape):
    assert split_shape(n_albums, (4, 1, 1)) == shape


def test_album_rule_keeps_the_papers_text_when_it_holds():
    assert album_rule([6, 6], seed=0, ratio=(4, 1, 1), why="paper") == "album split 4/1/1 per singer (paper), seed 0"
    assert album_rule([6, 3], seed=2, ratio=(4, 1, 1), why="paper") == (
        "album split per singer: 4/1/1 for 1 singer, 1/1/1 for 1 singer (paper; 4/1/1 needs 6 albums, here 3 to 6), "
        "seed 2")
