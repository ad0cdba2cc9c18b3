"""Homes are never broken by singerid, and every broken home names a repair that works.

For each broken state we can produce, ``query`` fails with one line whose first command is
run as printed (DATA and NEW_HOME filled in; train gets test-size options), again and again,
until the query answers; `info --check` must name the same first command. Real homes on a
small generated corpus, the real CLI in-process (its error boundary included).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from embed_corpus import make_tracks

from singerid.cli import main
from singerid.index.home import Home

pytestmark = pytest.mark.usefixtures("one_torch_thread_module")

FAST_TRAIN = ["--recipe", "paper", "--epochs", "1", "--threads", "1"]  # test size: the paper recipe needs no separation


def cli(*args: str) -> tuple[int, str, str]:
    """Run ``singerid ARGS`` in this process through its error boundary: (exit code, stdout, stderr)."""
    import contextlib
    import io

    import torch

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exit_info:
        main(list(args))
    torch.set_num_threads(1)  # commands give torch every core; the tests share two
    return exit_info.value.code, out.getvalue(), err.getvalue()


def ok(*args: str) -> str:
    code, out, err = cli(*args)
    assert code == 0, (args, err)
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """4 singers x (3 train + 1 val + 2 test) songs x 5 s, in singer folders."""
    root = tmp_path_factory.mktemp("guard_corpus")
    make_tracks(root, singers=4, train_songs=3, val_songs=1, test_songs=2, seconds=5.0)
    return root


def fill_home(root: Path, corpus: Path, *, seed: int = 0) -> Home:
    ok("train", str(corpus), "--home", str(root), "--seed", str(seed), *FAST_TRAIN)
    ok("embed-corpus", str(corpus), "--home", str(root), "--threads", "1")
    ok("build-index", "--home", str(root))
    return Home(root)


@pytest.fixture(scope="module")
def full_home(tmp_path_factory, corpus) -> Home:
    return fill_home(tmp_path_factory.mktemp("full") / "h", corpus)


@pytest.fixture(scope="module")
def other_home(tmp_path_factory, corpus) -> Home:
    """A second home whose model (another seed) differs from full_home's."""
    return fill_home(tmp_path_factory.mktemp("other") / "h", corpus, seed=1)


def song(corpus: Path) -> Path:
    return corpus / "singer1" / "song5.wav"  # a test song


def first_command(message: str) -> str:
    commands = re.findall(r"`([^`]+)`", message)
    assert commands, f"no command in {message!r}"
    return commands[0]


def run_command(command: str, corpus: Path, new_home: Path) -> Path | None:
    """Run a suggested command as printed (placeholders filled); returns the home it acted on."""
    argv = shlex.split(command.replace("DATA", str(corpus)).replace("NEW_HOME", str(new_home)))
    if argv[0] != "singerid":
        subprocess.run(argv, check=True)
        return None
    extra = FAST_TRAIN if argv[1] == "train" else []
    ok(*argv[1:], *extra)
    return Path(argv[argv.index("--home") + 1])


def repair(home: Path, corpus: Path, new_home: Path, *, query_args: tuple[str, ...] = ()) -> list[str]:
    """Query; while it fails, check its one-line error and run its first command. Returns the commands run."""
    ran: list[str] = []
    for _ in range(5):
        code, out, err = cli("query", str(song(corpus)), "--home", str(home), *query_args)
        if code == 0:
            assert out.startswith(f"{song(corpus)}: singer")
            return ran
        assert code == 1 and err.startswith("Error: ") and err.count("\n") == 1, err
        ran.append(first_command(err))
        acted_on = run_command(ran[-1], corpus, new_home)
        if acted_on is not None and acted_on != home:
            home, query_args = acted_on, ()  # a new home: its own store
    raise AssertionError(f"query still fails after {ran}")


def check_info_agrees(home: Path, expected_first: str, corpus: Path, *, db: tuple[str, ...] = ()) -> None:
    """info --check names the same first command as query: one problem per layer, none contradicting."""
    code, out, err = cli("info", "--home", str(home), "--check", "--json", *db)
    if code == 1 and not out:  # the manifest itself cannot be read: the same error as every command
        assert first_command(err) == expected_first
        return
    data = json.loads(out)
    lines = data["problems"] or [data["next_steps"]]
    assert {first_command(p) for p in lines} == {expected_first}, lines
    assert code == (1 if data["problems"] else 0)


def steps(home: Path, *names: str) -> list[str]:
    commands = {"train": f"singerid train DATA --home {home}", "train-attcrnn": f"singerid train DATA --model attcrnn "
                f"--home {home}", "embed": f"singerid embed-corpus DATA --home {home}",
                "build": f"singerid build-index --home {home}"}
    return [commands[n] for n in names]


# --- the broken states ----------------------------------------------------------------------

def test_empty_home_needs_train_then_embed_then_build(corpus, tmp_path):
    home = tmp_path / "nohome"
    check_info_agrees(home, steps(home, "train")[0], corpus)
    assert not home.exists()  # info created nothing
    assert repair(home, corpus, tmp_path / "new") == steps(home, "train", "embed", "build")


def test_missing_manifest_is_restored_by_build_index(full_home, corpus, tmp_path):
    home = Path(shutil.copytree(full_home.root, tmp_path / "h"))
    (home / "manifest.json").unlink()
    check_info_agrees(home, steps(home, "build")[0], corpus)
    assert repair(home, corpus, tmp_path / "new") == steps(home, "build")


def test_unreadable_manifest_is_moved_aside_then_rebuilt(full_home, corpus, tmp_path):
    home = Path(shutil.copytree(full_home.root, tmp_path / "h"))
    (home / "manifest.json").write_text("{not json")
    manifest = home / "manifest.json"
    check_info_agrees(home, f"mv {manifest} {manifest}.bad", corpus)
    assert repair(home, corpus, tmp_path / "new") == [f"mv {manifest} {manifest}.bad", *steps(home, "build")]


def test_missing_index_file_is_rebuilt(full_home, corpus, tmp_path):
    home = Path(shutil.copytree(full_home.root, tmp_path / "h"))
    for path in (home / "index").glob("*.faiss"):
        path.unlink()
    check_info_agrees(home, steps(home, "build")[0], corpus)
    assert repair(home, corpus, tmp_path / "new") == steps(home, "build")


def test_index_of_another_model_is_rebuilt(full_home, corpus, tmp_path):
    home = Path(shutil.copytree(full_home.root, tmp_path / "h"))
    data = json.loads((home / "manifest.json").read_text())
    data["index"]["model_sha256"] = "0" * 64
    (home / "manifest.json").write_text(json.dumps(data))
    check_info_agrees(home, steps(home, "build")[0], corpus)
    assert repair(home, corpus, tmp_path / "new") == steps(home, "build")


def test_missing_model_needs_a_new_home(full_home, corpus, tmp_path):
    home = Path(shutil.copytree(full_home.root, tmp_path / "h"))
    shutil.rmtree(home / "models" / "attcrnn")
    new = tmp_path / "new"
    check_info_agrees(home, steps(Path("NEW_HOME"), "train-attcrnn")[0], corpus)
    code, _, err = cli("train", str(corpus), "--home", str(home), *FAST_TRAIN)  # in place: refused, not half-fixed
    recorded = json.loads((home / "manifest.json").read_text())["model"]["sha256"][:12]
    assert code == 1 and err.startswith(f"Error: {home} holds a store of 64 blocks and an index of 64 vectors made by "
                                        f"the attcrnn model {recorded}, which is no longer in {home}/models/attcrnn; "
                                        "a new model cannot read them; restore that folder from a backup, or train "
                                        f"into a new home instead: `singerid train {corpus} --model attcrnn --home "
                                        "NEW_HOME`"), err
    assert not (home / "models" / "attcrnn").exists()
    assert repair(home, corpus, new) == [
        *steps(Path("NEW_HOME"), "train-attcrnn"), *steps(new, "embed", "build")]


def test_replaced_model_is_one_problem_and_needs_a_new_home(full_home, other_home, corpus, tmp_path):
    home = Path(shutil.copytree(full_home.root, tmp_path / "h"))
    shutil.rmtree(home / "models" / "attcrnn")
    shutil.copytree(other_home.model_dir("attcrnn"), home / "models" / "attcrnn")  # as an old `train` did
    new = tmp_path / "new"
    code, out, _ = cli("info", "--home", str(home), "--check", "--json")
    problems = json.loads(out)["problems"]
    assert code == 1 and len(problems) == 1 and "(retrained or replaced)" in problems[0]
    assert f"build-index --home {home}" not in problems[0]  # it cannot help while the model does not match
    assert repair(home, corpus, new) == [*steps(Path("NEW_HOME"), "train-attcrnn"), *steps(new, "embed", "build")]


def test_store_of_another_model_needs_its_own_store_or_a_new_home(full_home, other_home, corpus, tmp_path):
    db = ("--db", f"sqlite:///{other_home.db_path}")
    check_info_agrees(full_home.root, steps(Path("NEW_HOME"), "train-attcrnn")[0], corpus, db=db)
    code, _, err = cli("query", str(song(corpus)), "--home", str(full_home.root), *db)
    assert code == 1 and "the store's vectors were made by model " in err and "given with --db?" in err
    new = tmp_path / "new"
    assert repair(full_home.root, corpus, new, query_args=db) == [
        *steps(Path("NEW_HOME"), "train-attcrnn"), *steps(new, "embed", "build")]


# --- train never overwrites a model in use ---------------------------------------------------

def test_train_refuses_to_overwrite_a_model_the_home_depends_on(full_home, corpus, tmp_path):
    home = Path(shutil.copytree(full_home.root, tmp_path / "h"))
    weights = home / "models" / "attcrnn" / "model.safetensors"
    before = weights.read_bytes()
    code, out, err = cli("train", str(corpus), "--model", "attcrnn", "--home", str(home), *FAST_TRAIN)
    assert code == 1 and out == ""
    assert err == (f"Error: {home} holds a store of 64 blocks and an index of 64 vectors made by the attcrnn model "
                   f"in {home}/models/attcrnn; training again would overwrite that model and leave them unreadable; "
                   f"to retrain, train into a new home instead: `singerid train {corpus} --model attcrnn --home "
                   f"NEW_HOME` (then embed-corpus and build-index there), or delete {home} first\n")
    assert weights.read_bytes() == before
    ok("query", str(song(corpus)), "--home", str(home))  # the home still answers
    new = tmp_path / "new"
    assert run_command(first_command(err), corpus, new) == new  # the suggested command works
    assert (new / "models" / "attcrnn" / "model.json").is_file()


def test_train_may_replace_a_model_nothing_depends_on_and_train_another_kind(full_home, corpus, tmp_path):
    home = tmp_path / "h"
    ok("train", str(corpus), "--home", str(home), *FAST_TRAIN)
    ok("train", str(corpus), "--home", str(home), "--seed", "1", *FAST_TRAIN)  # nothing embedded yet: allowed
    filled = Path(shutil.copytree(full_home.root, tmp_path / "filled"))
    ok("train", str(corpus), "--model", "crnn", "--home", str(filled), *FAST_TRAIN)  # the attcrnn vectors keep theirs
    ok("query", str(song(corpus)), "--home", str(filled))


def test_an_interrupted_training_run_still_resumes(corpus, tmp_path):
    home = tmp_path / "h"
    state = home / "models" / "attcrnn" / "last.pt"
    cmd = [sys.executable, "-m", "singerid", "-v", "train", str(corpus), "--home", str(home), "--recipe", "paper",
           "--threads", "1", "--patience", "100"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SINGERID_NO_PROGRESS": "1"}
    proc = subprocess.Popen([*cmd, "--epochs", "100"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not state.is_file() and proc.poll() is None:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    done = len(json.loads((home / "models" / "attcrnn" / "train_log.json").read_text())["epochs"])
    assert state.is_file() and 1 <= done < 100
    result = subprocess.run([*cmd, "--epochs", str(done + 1), "--json"], capture_output=True, text=True, env=env,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"resuming after epoch {done}" in result.stderr
    assert json.loads(result.stdout)["epochs_run"] == done + 1
