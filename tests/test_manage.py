"""enrol / remove: names that clash or are reserved, data errors, --json, --device, and the
unknown-singer threshold recalibrated on the index that queries will search."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import pytest
from embed_corpus import make_tracks, write_song

from singerid.cli import main
from singerid.config import FeatureConfig, ModelConfig, TrainConfig
from singerid.embedder.train import train_embedder
from singerid.errors import DatasetError, ParameterError
from singerid.index.home import Home
from singerid.pipeline.build_index import build_index
from singerid.pipeline.calibrate import CALIBRATION_FILE
from singerid.pipeline.embed_corpus import embed_tracks
from singerid.pipeline.manage import enrol, info, remove
from singerid.pipeline.query import QueryEngine, QueryOptions
from singerid.records import Track

pytestmark = pytest.mark.usefixtures("one_torch_thread_module")

TRAIN = TrainConfig(epochs=3, batch_size=8, lr=3e-3, patience=3, seed=0)  # ours: enough for the easy corpus
KNOWN = "singer0, singer1, singer2, singer3"


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Home:
    """4 singers x 3 train songs x 5 s embedded (48 blocks) with a flat index and a calibrated threshold."""
    root = tmp_path_factory.mktemp("manage_corpus")
    tracks = make_tracks(root, singers=4, train_songs=3, val_songs=1, seconds=5.0)
    home = Home(tmp_path_factory.mktemp("manage") / "h").create()
    train_embedder(tracks, feature_cfg=FeatureConfig(), model_cfg=ModelConfig(kind="attcrnn"), train_cfg=TRAIN,
                   out_dir=home.model_dir("attcrnn"), cache_dir=home.root / "cache")
    embed_tracks(home, [t for t in tracks if t.split == "train"])
    build_index(home)
    return home


@pytest.fixture
def home(base, tmp_path) -> Home:
    return Home(shutil.copytree(base.root, tmp_path / "h"))


@pytest.fixture(scope="module")
def voice(tmp_path_factory) -> list[Path]:
    """Four songs of a fifth voice (none of the home's singers)."""
    root = tmp_path_factory.mktemp("voice")
    return [write_song(root / f"new{i}.wav", singer=4, song_seed=900 + i, seconds=5.0) for i in range(4)]


def cli(*args: str) -> tuple[int, str, str]:
    """``singerid ARGS`` in this process through its error boundary: (exit code, stdout, stderr)."""
    import torch

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exit_info:
        main(list(args))
    torch.set_num_threads(1)
    return exit_info.value.code, out.getvalue(), err.getvalue()


def calibration(home: Home) -> dict:
    return json.loads((home.root / CALIBRATION_FILE).read_text())


def rebuilt_calibration(home: Home, dest: Path) -> dict:
    """The calibration build-index computes from scratch on a copy of ``home``."""
    copy = Home(shutil.copytree(home.root, dest))
    build_index(copy)
    return calibration(copy)


# --- remove -----------------------------------------------------------------------------------

def test_removing_a_singer_or_song_the_store_lacks_is_a_data_error(home, tmp_path):
    code, out, err = cli("remove", "--singer", "Nobody", "--home", str(home.root))
    assert (code, out, err) == (1, "", f"Error: no singer named 'Nobody' in the store (known: {KNOWN})\n")
    code, _, err = cli("remove", "--song", str(tmp_path / "gone.wav"), "--home", str(home.root))
    assert (code, err) == (1, f"Error: no song with path '{tmp_path / 'gone.wav'}' in the store\n")
    with pytest.raises(DatasetError, match=r"^no singer named 'Nobody' in the store"):
        remove(home, singer="Nobody")
    nowhere = tmp_path / "nohome"
    code, _, err = cli("remove", "--singer", "Nobody", "--home", str(nowhere))
    assert (code, err) == (1, f"Error: no singer named 'Nobody': {nowhere} holds no store yet\n")
    assert not nowhere.exists()
    code, _, err = cli("remove", "--home", str(home.root))
    assert code == 2 and "give exactly one of --singer NAME or --song PATH" in err


def test_remove_json_and_the_threshold_recalibrated_on_what_is_left(home, tmp_path):
    before = calibration(home)
    code, out, err = cli("remove", "--singer", "singer3", "--home", str(home.root), "--json")
    assert code == 0, err
    data = json.loads(out)
    after = calibration(home)
    assert data == {"action": "remove", "n_songs": 3, "n_blocks": 12, "index_vectors": 36, "unknown_threshold": after["min_similarity"],
                    "singer": "singer3", "songs": []}
    assert (before["n_songs"], after["n_songs"]) == (12, 9)
    assert after == rebuilt_calibration(home, tmp_path / "copy")
    assert info(home, check=True)["problems"] == []


# --- enrol ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["unknown", "Unknown", " UNKNOWN "])
def test_the_name_unknown_is_reserved(home, voice, name):
    code, out, err = cli("enrol", name, str(voice[0]), "--home", str(home.root))
    assert (code, out) == (2, "")
    assert err == (f"Error: singer name {name!r} is reserved: 'unknown' is the answer for a singer the index does "
                   "not know; enrol under another name\n")
    assert info(home)["n_songs"] == 12
    with pytest.raises(ParameterError, match="is reserved"):
        enrol(home, name, voice[:1])


def test_a_new_voice_under_an_existing_name_is_refused_unless_asked(home, voice):
    code, out, err = cli("enrol", "singer0", str(voice[0]), "--home", str(home.root))
    assert (code, out) == (1, "")
    assert err == ("Error: singer 'singer0' is already in the store (3 song(s), trained); to add these songs to that "
                   "singer pass --add-to-existing (add_to_existing=True), or enrol the new voice under another name\n")
    assert info(home)["n_songs"] == 12  # nothing stored
    with pytest.raises(DatasetError, match="^singer 'singer0' is already in the store"):
        enrol(home, "singer0", voice[:1])
    code, out, err = cli("enrol", "singer0", str(voice[0]), "--home", str(home.root), "--add-to-existing")
    assert code == 0, err
    assert out.startswith("enrolled singer0: 1 song(s), 4 blocks; index now holds 52 vectors, unknown-singer "
                          "threshold recalibrated to ")
    singers = {s["name"]: s["n_songs"] for s in info(home)["singers"]}
    assert singers["singer0"] == 4 and len(singers) == 4


def test_rerunning_the_same_enrol_is_no_clash_but_other_songs_are(home, voice):
    first = enrol(home, "Newcomer", voice[:2])
    again = enrol(home, "Newcomer", voice[:2])
    assert (first.n_songs, again.n_songs, again.embed.n_skipped, again.index_vectors) == (2, 0, 2, 56)
    with pytest.raises(DatasetError, match=r"^singer 'Newcomer' is already in the store \(2 song\(s\), enrolled\)"):
        enrol(home, "Newcomer", voice[2:3])
    assert enrol(home, "Newcomer", voice[2:3], add_to_existing=True).index_vectors == 60


def test_enrol_json_device_and_the_threshold_matches_a_fresh_build(home, voice, tmp_path):
    before = calibration(home)
    code, out, err = cli("enrol", "Newcomer", *map(str, voice[:3]), "--home", str(home.root), "--json",
                         "--device", "cpu")
    assert code == 0, err
    data = json.loads(out)
    after = calibration(home)
    assert data == {"action": "enrol", "singer": "Newcomer", "n_songs": 3, "n_blocks": 12, "index_vectors": 60,
                    "unknown_threshold": after["min_similarity"], "n_skipped": 0, "failures": []}
    assert (before["n_songs"], after["n_songs"]) == (12, 15)
    assert after == rebuilt_calibration(home, tmp_path / "copy")  # query --reject-unknown: the current index's
    with QueryEngine.open(home) as engine:
        decision = engine.identify(voice[3], QueryOptions(reject_unknown=True))
    assert decision.predicted == "Newcomer"
    assert decision.singer == ("Newcomer" if decision.mean_similarity >= after["min_similarity"] else "unknown")


def test_enrol_json_reports_a_bad_song_and_exits_1(home, voice, tmp_path):
    bad = tmp_path / "bad.mp3"
    bad.write_bytes(b"\x00" * 5000)
    code, out, _ = cli("enrol", "Newcomer", str(voice[0]), str(bad), "--home", str(home.root), "--json")
    data = json.loads(out)
    assert code == 1 and (data["n_songs"], data["index_vectors"]) == (1, 52)
    assert [f["song"] for f in data["failures"]] == [str(bad)]
    assert "not a readable audio file" in data["failures"][0]["error"]


def test_enrol_checks_the_device(home, voice):
    code, _, err = cli("enrol", "Newcomer", str(voice[0]), "--home", str(home.root), "--device", "tpu")
    assert (code, err) == (2, "Error: unknown device 'tpu': use 'cpu' or 'cuda'\n")
    assert info(home)["n_songs"] == 12


def test_enrol_after_an_interrupted_enrol_makes_store_and_index_agree(home, voice):
    """Songs stored by an enrol that died before the index was saved are indexed by the rerun."""
    before = home.manifest_path.read_bytes()
    embed_tracks(home, [Track(path=p, singer="Newcomer", song_id=f"Newcomer/{p.stem}", split="train",
                              dataset="enrolled") for p in voice[:2]])
    home.manifest_path.write_bytes(before)  # as if killed before the swap (the old index generation is kept)
    checked = info(home, check=True)
    assert (checked["problems"], checked["pending_blocks"]) == ([], 8)  # queries answer from the old index
    code, out, _ = cli("info", "--home", str(home.root))
    assert code == 0 and "pending: 8 stored blocks not yet in the index" in out
    summary = enrol(home, "Newcomer", voice[:2])
    assert (summary.n_songs, summary.index_vectors) == (0, 56)
    checked = info(home, check=True)
    assert (checked["problems"], checked["pending_blocks"]) == ([], 0)


def test_enrol_into_a_home_without_an_index_stores_and_says_so(home, voice):
    shutil.rmtree(home.root / "index")
    data = json.loads(home.manifest_path.read_text())
    data["index"] = None
    home.manifest_path.write_text(json.dumps(data))
    code, out, err = cli("enrol", "Newcomer", str(voice[0]), "--home", str(home.root))
    assert code == 0, err
    assert out == ("enrolled Newcomer: 1 song(s), 4 blocks; no index yet: "
                   f"run `singerid build-index --home {home.root}`\n")


@pytest.mark.gpu
def test_enrol_on_cuda(home, voice):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    code, out, err = cli("enrol", "Newcomer", str(voice[0]), "--home", str(home.root), "--device", "cuda", "--json")
    assert code == 0, err
    assert json.loads(out)["index_vectors"] == 52
