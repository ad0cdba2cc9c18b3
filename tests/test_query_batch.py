"""`singerid query` as a batch tool and `singerid similar`, run as a user would (subprocess-free CliRunner)."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys

import pytest

pytestmark = pytest.mark.usefixtures("one_torch_thread_module")


def run(args: list[str], stdin: str | None = None) -> tuple[int, str, str]:
    """Run ``python -m singerid ARGS`` as a user would; (exit code, stdout, stderr)."""
    proc = subprocess.run([sys.executable, "-m", "singerid", *args], input=stdin, capture_output=True, text=True,
                          env=_env(), timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "SINGERID_NO_PROGRESS": "1"}


@pytest.fixture(scope="module")
def music(ready_home, tmp_path_factory):
    """A folder tree of test songs, a bad file among them, a hidden file and a text file."""
    root = tmp_path_factory.mktemp("music")
    tests = ready_home.songs("test")
    (root / "a" / "b").mkdir(parents=True)
    shutil.copy(tests[0], root / "a" / "one.wav")
    shutil.copy(tests[1], root / "a" / "b" / "two.wav")
    shutil.copy(tests[2], root / "three.wav")
    (root / "a" / "broken.mp3").write_bytes(b"garbage" * 100)
    (root / "a" / ".hidden.wav").write_bytes(b"x")
    (root / "notes.txt").write_text("not audio")
    return root


def test_folder_recursive_jsonl_streams_every_file_and_reports_the_bad_one(ready_home, music):
    code, out, err = run(["query", str(music), "--home", str(ready_home.home.root), "--format", "jsonl"])
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["song"] for r in rows] == [str(music / "a" / "b" / "two.wav"), str(music / "a" / "broken.mp3"),
                                         str(music / "a" / "one.wav"), str(music / "three.wav")]
    assert [r["ok"] for r in rows] == [True, False, True, True]
    assert "broken.mp3" in rows[1]["error"]
    assert code == 1 and "1 of 4 song(s) could not be identified" in err


def test_globs_and_list_file_and_csv(ready_home, music, tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text(f"# my tracks\n{music / 'three.wav'}\n\n{music / 'a' / 'one.wav'}\n")
    code, out, err = run(["query", str(music / "a" / "**" / "*.wav"), "--list", str(listing),
                          "--home", str(ready_home.home.root), "--format", "csv"])
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["song"] for r in rows] == [str(music / "a" / "b" / "two.wav"), str(music / "a" / "one.wav"),
                                         str(music / "three.wav"), str(music / "a" / "one.wav")]
    assert all(r["ok"] == "True" and r["singer"] and float(r["vote_share"]) > 0 for r in rows)


def test_list_from_stdin_and_json_array(ready_home, music):
    code, out, _ = run(["query", "--list", "-", "--home", str(ready_home.home.root), "--json"],
                       stdin=f"{music / 'three.wav'}\n")
    data = json.loads(out)
    assert code == 0 and len(data) == 1 and data[0]["known"] is True


def test_text_output_names_the_score_of_each_method(ready_home, music):
    song = str(music / "three.wav")
    code, out, _ = run(["query", song, "--home", str(ready_home.home.root), "--method", "softmax"])
    assert code == 0 and "mean top probability" in out and "mean similarity" not in out
    code, out, _ = run(["query", song, "--home", str(ready_home.home.root), "--similar", "2"])
    assert code == 0 and "mean similarity" in out and "similar singers:" in out


def test_pattern_matching_nothing_and_empty_folder(ready_home, tmp_path):
    (tmp_path / "empty").mkdir()
    code, out, err = run(["query", str(tmp_path / "nope*.wav"), "--home", str(ready_home.home.root)])
    assert code == 1 and "no such file" in err
    code, out, err = run(["query", str(tmp_path / "empty"), "--home", str(ready_home.home.root)])
    assert code == 2 and "no audio files found" in err


def test_similar_command(ready_home):
    home = str(ready_home.home.root)
    code, out, err = run(["similar", "singer0", "--home", home, "--top", "2", "--json"])
    assert code == 0, err
    data = json.loads(out)
    assert data["method"] == "cosine of centroids" and len(data["similar"]) == 2
    assert "singer0" not in {s["singer"] for s in data["similar"]}
    code, out, err = run(["similar", "--song", str(ready_home.songs("test")[0]), "--home", home])
    assert code == 0 and out.startswith("closest to") and len(out.splitlines()) == 1 + 4
    code, _, err = run(["similar", "Nobody", "--home", home])
    assert code == 1 and err.strip() == "Error: no singer 'Nobody' in the index; `singerid info` lists the singers"
