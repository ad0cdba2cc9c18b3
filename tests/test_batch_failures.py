"""One bad file never stops a batch: recorded once per file, the rest stored, reruns skip it
while it is unchanged (unless --retry-failed), and embed-corpus / enrol exit 1 when some failed."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from embed_corpus import write_song

from singerid.cli import main
from singerid.index.store import MetadataStore


def run(capsys, *args: str) -> tuple[int, str, str]:
    """Run the CLI in this process: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as info:
        main(["-q", *args])
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


@pytest.fixture
def corpus(tmp_path: Path) -> tuple[Path, dict[str, Path]]:
    """<singer>/<song>.wav: 3 good songs each for two singers, plus bad files under ``ann``."""
    root = tmp_path / "corpus"
    for singer, (index, name) in enumerate([(0, "ann"), (1, "bob")]):
        for k in range(3):
            write_song(root / name / f"song_{k}.wav", singer=index, song_seed=100 * singer + k, seconds=3.0)
    bad = {
        "loud": root / "ann" / "loud.wav",  # finite float samples at 1e30
        "cut": root / "ann" / "cut.wav",  # header says 3 s, half of it present
        "aac": root / "ann" / "tune.m4a",
        "same_stem": root / "ann" / "song_0.flac",  # second file of song_0: must not stop the run
    }
    sf.write(bad["loud"], np.full(48_000, 1e30, np.float32), 16_000, subtype="FLOAT")
    data = (root / "ann" / "song_1.wav").read_bytes()
    bad["cut"].write_bytes(data[: len(data) // 2])
    bad["aac"].write_bytes(b"\x00\x00\x00\x18ftypM4A " + bytes(2000))
    shutil.copy(root / "ann" / "song_2.wav", bad["same_stem"])  # same audio as song_2: a duplicate, same singer
    return root, bad


def failures(home) -> dict[str, tuple[int, str]]:
    with MetadataStore(f"sqlite:///{home.root / 'meta.sqlite'}") as store:
        return {Path(f.path).name: (f.n_failures, f.error) for f in store.failures()}


def test_embed_corpus_records_each_bad_file_once_and_reruns_retry_only_when_asked(ready_home, tmp_path, corpus,
                                                                                  capsys):
    home = ready_home.copy(tmp_path / "home")
    root, bad = corpus
    args = ("embed-corpus", str(root), "--home", str(home.root), "--split", "all", "--split-rule", "song")
    code, out, err = run(capsys, *args)
    assert code == 1, err
    assert "Error: 3 of 10 songs could not be stored; the other 7 are stored" in err
    assert "samples reach 1e+30" in err and "truncated file" in err and "convert it to FLAC or WAV" in err
    first = failures(home)
    assert set(first) == {"loud.wav", "cut.wav", "tune.m4a"} and all(n == 1 for n, _ in first.values())

    code, _, err = run(capsys, *args)  # unchanged: not tried again, still reported, still exit 1
    assert code == 1 and "failed before, unchanged, not retried" in err and "--retry-failed" in err
    assert failures(home) == first

    code, _, err = run(capsys, *args, "--retry-failed")
    assert code == 1
    assert {name: n for name, (n, _) in failures(home).items()} == {"loud.wav": 2, "cut.wav": 2, "tune.m4a": 2}

    bad["aac"].unlink()  # fixing the other two: a rerun tries them (they changed) and stores them
    write_song(bad["loud"], singer=0, song_seed=7, seconds=3.0)
    write_song(bad["cut"], singer=0, song_seed=8, seconds=3.0)
    code, _, err = run(capsys, *args)
    assert code == 0, err
    assert set(failures(home)) == {"tune.m4a"}  # the stored ones lose their rows; a deleted file keeps its history


def test_a_byte_identical_song_under_another_singer_is_recorded_not_silently_skipped(ready_home, tmp_path, capsys):
    home = ready_home.copy(tmp_path / "home")
    stored = ready_home.songs("train")[0]
    copy = tmp_path / "copy.wav"
    shutil.copy(stored, copy)
    code, _, err = run(capsys, "enrol", "Someone Else", str(copy), "--home", str(home.root))
    assert code == 1
    assert f"same audio as {stored.absolute()}, stored under singer {ready_home.singer_of(stored)!r}" in err
    assert list(failures(home)) == ["copy.wav"]


def test_enrol_stores_the_good_songs_and_exits_1_for_the_bad_one(ready_home, tmp_path, capsys):
    home = ready_home.copy(tmp_path / "home")
    good = [write_song(tmp_path / f"new_{k}.wav", singer=4, song_seed=50 + k, seconds=3.0) for k in range(2)]
    loud = tmp_path / "loud.wav"
    sf.write(loud, np.full(48_000, 1e30, np.float32), 16_000, subtype="FLOAT")
    code, out, err = run(capsys, "enrol", "Newcomer", str(good[0]), str(loud), str(good[1]), "--home", str(home.root),
                         "--json")
    assert code == 1
    assert "1 of 3 song(s) could not be enrolled" in err
    assert '"n_songs": 2' in out
    code, _, err = run(capsys, "enrol", "Newcomer", str(loud), "--home", str(home.root), "--add-to-existing")
    assert code == 1 and "could not be enrolled" in err
    assert failures(home)["loud.wav"][0] == 1  # unchanged: not tried again


@pytest.mark.parametrize("command", ["embed-corpus", "enrol", "evaluate"])
def test_batch_commands_say_their_exit_statuses_in_help(command, capsys):
    code, out, _ = run(capsys, command, "--help")
    assert code == 0
    text = " ".join(out.split())
    assert "Exit status" in text and "1 some" in text, text[-600:]


def test_a_non_utf8_name_is_stored_or_reported_by_name_never_an_internal_error(ready_home, tmp_path, capsys):
    if os.name != "posix":
        pytest.skip("byte file names are POSIX only")
    home = ready_home.copy(tmp_path / "home")
    odd = Path(os.fsdecode(os.fsencode(str(tmp_path)) + b"/caf\xe9\x1b[31m.wav"))
    write_song(tmp_path / "plain.wav", singer=5, song_seed=9, seconds=3.0)
    os.rename(tmp_path / "plain.wav", odd)
    code, out, err = run(capsys, "check-audio", str(odd))
    assert code == 0 and "caf\\xe9\\x1b[31m.wav" in out and "\x1b" not in out
    code, out, err = run(capsys, "enrol", "Odd", str(odd), "--home", str(home.root))
    assert code == 0, err
