"""Dataset readers on tiny fake trees of every layout, and the `singerid scan` command.

The trees hold real (very short) audio files; the readers only list them, never decode.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from pathlib import Path

import pytest
from conftest import write_tone

from singerid.cli import main
from singerid.datasets import assign_split, detect_layout, load_dataset
from singerid.errors import DatasetError, ParameterError

EXPECTED = ("expected one of: artist20 (mp3s-32k/<artist>/<album>/<track>.mp3), "
            "singer32/60 (<singer>/<song>.wav or wav_16000/ + *_train.json), "
            "folder (<singer>/[<album>/]<song>.<ext>)")


# --- building fake trees ---------------------------------------------------------------------

@pytest.fixture(scope="session")
def audio_templates(tmp_path_factory) -> dict[str, bytes]:
    """Bytes of a 0.05-s generated tone per extension; trees copy them (fast, and real audio)."""
    folder = tmp_path_factory.mktemp("templates")
    formats = {".wav": "WAV", ".flac": "FLAC", ".mp3": "MP3"}
    return {ext: write_tone(folder / f"t{ext}", seconds=0.05, fmt=fmt).read_bytes() for ext, fmt in formats.items()}


@pytest.fixture
def put(audio_templates):
    """``put(path)`` writes a tiny audio file of the path's extension (creating folders)."""

    def write(path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(audio_templates.get(path.suffix.lower(), audio_templates[".wav"]))
        return path

    return write


ARTISTS = ("aerosmith", "beatles", "cure")


def make_artist20(root: Path, put, *, n_albums: int = 6, n_tracks: int = 2, ext: str = ".mp3") -> list[str]:
    """ROOT/mp3s-32k/<artist>/<Album_k>/<NN-Track>.<ext> plus distractor folders; returns the entries."""
    entries = []
    for artist in ARTISTS:
        for a in range(n_albums):
            for t in range(n_tracks):
                entry = f"{artist}/Album_{a}/{t + 1:02d}-Track_{t}"
                put(root / "mp3s-32k" / f"{entry}{ext}")
                entries.append(entry)
    put(root / "mfccs" / "aerosmith" / "x.wav")  # other folders beside mp3s-32k are ignored
    (root / "chromftrs").mkdir()
    return entries


def write_lists(root: Path, entries: list[str], *, official: bool = True) -> None:
    """lists/a20-all-tracks.list and, if ``official``, trn/val/tst lists splitting albums 3/1/2."""
    lists = root / "lists"
    lists.mkdir(exist_ok=True)
    (lists / "a20-all-tracks.list").write_text("".join(f"{e}\n" for e in entries))
    if official:
        part = {0: "trn", 1: "trn", 2: "trn", 3: "val", 4: "tst", 5: "tst"}
        for name in ("trn", "val", "tst"):
            chosen = [e for e in entries if part[int(e.split("/")[1].split("_")[1])] == name]
            (lists / f"a20-{name}-tracks.list").write_text("\n".join(chosen) + "\n")


def make_singer_tree(base: Path, put, singers: list[str], *, n_songs: int = 10, ext: str = ".wav") -> None:
    for singer in singers:
        for s in range(n_songs):
            put(base / singer / f"song_{s:02d}{ext}")


def json_splits(singers: list[str], n_songs: int = 10) -> dict[str, dict[str, list[str]]]:
    """Split files content: per singer songs 0..n-3 train, n-2 val, n-1 test (ids with and without .wav)."""
    out: dict[str, dict[str, list[str]]] = {"train": {}, "validate": {}, "test": {}}
    for i, singer in enumerate(singers):
        ids = [f"{singer}_{s:02d}" + (".wav" if (i + s) % 2 else "") for s in range(n_songs)]
        out["train"][singer], out["validate"][singer], out["test"][singer] = ids[:-2], ids[-2:-1], ids[-1:]
    return out


def write_json_splits(base: Path, prefix: str, splits: dict[str, dict[str, list[str]]]) -> None:
    base.mkdir(parents=True, exist_ok=True)
    for name, content in splits.items():
        (base / f"{prefix}_{name}.json").write_text(json.dumps(content))


def make_wav16k(base: Path, put, prefix: str, singers: list[str], *, n_songs: int = 10) -> None:
    splits = json_splits(singers, n_songs)
    for part in splits.values():
        for ids in part.values():
            for file_id in ids:
                put(base / "wav_16000" / f"{file_id.removesuffix('.wav')}.wav")
    write_json_splits(base, prefix, splits)


def singer_names(n: int) -> list[str]:
    return [f"singer_{i:02d}" for i in range(n)]


def splits_of(ds) -> dict[str, str]:
    return {t.song_id: t.split for t in ds.tracks}


def albums_by_split(ds) -> dict[str, dict[str, set[str]]]:
    out: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for t in ds.tracks:
        out[t.singer][t.split].add(t.album)
    return out


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    """Run ``singerid ARGS`` in-process through the real entry point (its error boundary)."""
    with pytest.raises(SystemExit) as info:
        main(list(args))
    out, err = capsys.readouterr()
    return info.value.code, out, err


# --- artist20 ----------------------------------------------------------------------------------

def test_artist20_tree_without_lists_gets_the_papers_album_split(tmp_path, put):
    entries = make_artist20(tmp_path, put)
    assert detect_layout(tmp_path) == "artist20"
    ds = load_dataset(tmp_path)
    assert ds.name == "artist20" and ds.seed == 0
    assert ds.layout == ("artist20: mp3s-32k/<artist>/<album>/<track> "
                         "(36 tracks, tree scan, no lists/a20-all-tracks.list)")
    assert ds.split_rule == "album split 4/1/1 per singer (paper), seed 0"
    assert ds.singers() == ARTISTS
    assert sorted(t.song_id for t in ds.tracks) == sorted(entries)
    assert all(t.dataset == "artist20" and t.path.suffix == ".mp3" and "mfccs" not in t.path.parts for t in ds.tracks)
    assert ds.counts() == {a: {"train": 8, "val": 2, "test": 2} for a in ARTISTS}
    for artist, parts in albums_by_split(ds).items():  # album-disjoint, 4/1/1 albums
        assert [len(parts[p]) for p in ("train", "val", "test")] == [4, 1, 1], artist
        assert not (parts["train"] & parts["val"] or parts["train"] & parts["test"] or parts["val"] & parts["test"])
    # the same split the synthetic corpus generator writes into its lists
    for artist in ARTISTS:
        want = assign_split([f"Album_{a}" for a in range(6)], seed=0, key=artist, ratio=(4, 1, 1))
        assert {t.album: t.split for t in ds.tracks if t.singer == artist} == want


def test_artist20_split_is_deterministic_per_seed_and_differs_across_seeds(tmp_path, put):
    make_artist20(tmp_path, put)
    first, again = load_dataset(tmp_path, seed=0), load_dataset(tmp_path, seed=0)
    assert first.tracks == again.tracks
    assert [t.song_id for t in first.tracks] == sorted(t.song_id for t in first.tracks)
    seeds = [splits_of(load_dataset(tmp_path, seed=s)) for s in (0, 21, 42)]
    assert seeds[0] != seeds[1] and seeds[0] != seeds[2] and seeds[1] != seeds[2]
    assert load_dataset(tmp_path, seed=21).split_rule.endswith("seed 21")


def test_artist20_accepts_flac_and_upper_case_extensions_and_the_mp3s_folder_itself(tmp_path, put):
    make_artist20(tmp_path, put, ext=".flac")
    put(tmp_path / "mp3s-32k" / "cure" / "Album_0" / "09-Loud.MP3")
    ds = load_dataset(tmp_path / "mp3s-32k")
    assert detect_layout(tmp_path / "mp3s-32k") == "artist20"
    assert len(ds.tracks) == 37 and "cure/Album_0/09-Loud" in splits_of(ds)
    assert splits_of(ds) == splits_of(load_dataset(tmp_path))


def test_artist20_lists_define_inventory_and_the_lists_split(tmp_path, put):
    entries = make_artist20(tmp_path, put)
    put(tmp_path / "mp3s-32k" / "beatles" / "Album_0" / "99-Unlisted.mp3")
    write_lists(tmp_path, entries)
    ds = load_dataset(tmp_path)
    assert ds.layout.endswith("(36 tracks, inventory from lists/a20-all-tracks.list)")
    assert "beatles/Album_0/99-Unlisted" not in splits_of(ds)
    assert ds.split_rule == "album split 4/1/1 per singer (paper), seed 0"  # lists do not change "album"

    official = load_dataset(tmp_path, split="lists")
    assert official.split_rule == (
        "dataset lists lists/a20-{trn,val,tst}-tracks.list (3/1/2 albums per singer) (seed not used)")
    assert official.counts() == {a: {"train": 6, "val": 2, "test": 4} for a in ARTISTS}
    assert {t.album for t in official.select("val")} == {"Album_3"}
    # the lists are found beside mp3s-32k/ when the reader is pointed at mp3s-32k/ itself
    assert load_dataset(tmp_path / "mp3s-32k", split="lists").tracks == official.tracks


def test_artist20_listed_track_missing_on_disk_is_an_error_naming_it(tmp_path, put):
    entries = make_artist20(tmp_path, put)
    write_lists(tmp_path, [*entries, "cure/Album_5/07-Gone"], official=False)
    with pytest.raises(DatasetError) as info:
        load_dataset(tmp_path)
    assert str(info.value) == (
        f"{tmp_path / 'lists' / 'a20-all-tracks.list'}: 1 listed track(s) missing under {tmp_path / 'mp3s-32k'}, "
        "first 'cure/Album_5/07-Gone' (looked for .mp3/.wav/.flac/.ogg)")


def test_artist20_lists_split_without_split_lists_is_an_error(tmp_path, put):
    entries = make_artist20(tmp_path, put)
    with pytest.raises(DatasetError, match=r"lists: no such folder; the lists split needs a20-trn-tracks.list"):
        load_dataset(tmp_path, split="lists")
    write_lists(tmp_path, entries, official=False)
    with pytest.raises(DatasetError) as info:
        load_dataset(tmp_path, split="lists")
    assert str(info.value).endswith("missing: a20-trn-tracks.list, a20-val-tracks.list, a20-tst-tracks.list")


def test_artist20_album_split_needs_three_albums_per_artist(tmp_path, put):
    make_artist20(tmp_path, put, n_albums=2, n_tracks=3)
    with pytest.raises(DatasetError) as info:
        load_dataset(tmp_path)
    assert str(info.value) == ("singer 'aerosmith' has 2 albums; the split 4/1/1 needs at least 3 per singer; "
                               "try the song split")
    ds = load_dataset(tmp_path, split="song")
    assert ds.split_rule == "song split 8:1:1 per singer, stratified by singer (albums leak across splits), seed 0"
    assert ds.counts() == {a: {"train": 4, "val": 1, "test": 1} for a in ARTISTS}


def test_artist20_malformed_list_line_is_an_error(tmp_path, put):
    entries = make_artist20(tmp_path, put)
    write_lists(tmp_path, [*entries, "cure/not-a-track"], official=False)
    with pytest.raises(DatasetError, match=r"a20-all-tracks.list:37: expected <artist>/<album>/<track>, "
                                           r"got 'cure/not-a-track'"):
        load_dataset(tmp_path)


def test_artist20_inside_a_wrapper_folder_and_contradicting_lists(tmp_path, put):
    entries = make_artist20(tmp_path / "artist20", put)
    assert detect_layout(tmp_path) == "artist20"
    assert len(load_dataset(tmp_path).tracks) == 36
    write_lists(tmp_path / "artist20", entries)
    val_list = tmp_path / "artist20" / "lists" / "a20-val-tracks.list"
    val_list.write_text(val_list.read_text() + "cure/Album_0/01-Track_0\n")
    with pytest.raises(DatasetError) as info:
        load_dataset(tmp_path, split="lists")
    assert str(info.value) == f"{val_list}: track 'cure/Album_0/01-Track_0' is also in the train list"


# --- singer32 / singer60 -----------------------------------------------------------------------

def test_singer32_tree_in_a_named_wrapper_gets_the_8_1_1_song_split(tmp_path, put):
    singers = singer_names(4)
    make_singer_tree(tmp_path / "singer32", put, singers)
    put(tmp_path / "singer32" / singers[0] / "live" / "extra.m4a")  # one level deeper is still a song
    assert detect_layout(tmp_path) == "singer32"
    ds = load_dataset(tmp_path)
    assert ds.name == "singer32" and ds.layout == "singer32: <singer>/<song> (4 singers, 41 songs, under singer32/)"
    assert ds.split_rule == "song split 8:1:1 per singer (paper; no albums), seed 0"
    assert ds.counts()[singers[0]] == {"train": 9, "val": 1, "test": 1}
    assert ds.counts()[singers[1]] == {"train": 8, "val": 1, "test": 1}
    assert all(t.album is None and t.dataset == "singer32" for t in ds.tracks)
    assert f"{singers[0]}/live/extra" in splits_of(ds)
    assert load_dataset(tmp_path).tracks == ds.tracks
    assert splits_of(load_dataset(tmp_path, seed=1)) != splits_of(ds)
    with pytest.raises(DatasetError, match=r"no split files <name>_train.json.*the lists split needs them"):
        load_dataset(tmp_path, split="lists")


def test_singer32_wav16000_with_json_split_files(tmp_path, put):
    singers = singer_names(3)
    make_wav16k(tmp_path, put, "singer32", singers)
    put(tmp_path / "wav_16000" / "stray.wav")  # not in any split file: ignored
    assert detect_layout(tmp_path) == "singer32"
    ds = load_dataset(tmp_path)
    assert ds.layout == ("singer32: wav_16000/<file_id>.wav + singer32_{train,validate,test}.json "
                         "(3 singers, 30 songs)")
    assert ds.split_rule == ("dataset split files singer32_{train,validate,test}.json "
                             "(8/1/1 songs per singer) (seed not used)")
    assert ds.counts() == {s: {"train": 8, "val": 1, "test": 1} for s in singers}
    test_ids = {t.song_id for t in ds.select("test")}
    assert test_ids == {f"{s}/{s}_09" for s in singers}
    assert all(t.path.parent.name == "wav_16000" and t.path.is_file() for t in ds.tracks)
    assert load_dataset(tmp_path, split="lists").tracks == ds.tracks
    song = load_dataset(tmp_path, split="song")
    assert song.split_rule.startswith("song split 8:1:1 per singer") and splits_of(song) != splits_of(ds)
    assert {t.song_id for t in song.tracks} == {t.song_id for t in ds.tracks}


def test_split_file_naming_a_missing_file_is_an_error(tmp_path, put):
    singers = singer_names(2)
    make_wav16k(tmp_path, put, "singer32", singers)
    (tmp_path / "wav_16000" / "singer_01_03.wav").unlink()
    with pytest.raises(DatasetError) as info:
        load_dataset(tmp_path)
    assert str(info.value) == (f"{tmp_path / 'singer32_train.json'}: file 'singer_01_03' of singer 'singer_01' "
                               f"is missing in {tmp_path / 'wav_16000'}")


def test_incomplete_or_unlabelled_split_layouts_are_errors(tmp_path, put):
    make_wav16k(tmp_path, put, "singer32", singer_names(2))
    (tmp_path / "singer32_test.json").unlink()
    with pytest.raises(DatasetError) as info:
        load_dataset(tmp_path)
    assert str(info.value) == f"{tmp_path}: incomplete split files for 'singer32': missing singer32_test.json"
    for name in ("train", "validate"):
        (tmp_path / f"singer32_{name}.json").unlink()
    with pytest.raises(DatasetError, match=r"wav_16000/ needs split files"):
        load_dataset(tmp_path, kind="singer32")


def test_split_files_with_an_empty_part_warn_and_a_singer_without_songs_fails(tmp_path, put, caplog):
    singers = singer_names(3)
    make_wav16k(tmp_path / "s32", put, "singer32", singers)
    validate = tmp_path / "s32" / "singer32_validate.json"
    content = json.loads(validate.read_text())
    content["singer_01"] = []
    validate.write_text(json.dumps(content))
    with caplog.at_level(logging.WARNING, logger="singerid.datasets"):
        ds = load_dataset(tmp_path / "s32")
    assert ds.counts()["singer_01"] == {"train": 8, "val": 0, "test": 1}
    assert "singer32_{train,validate,test}.json: singer 'singer_01' has no val songs" in caplog.text
    for name in ("train", "validate", "test"):
        path = tmp_path / "s32" / f"singer32_{name}.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "ghost": []}))
    with pytest.raises(DatasetError) as info:
        load_dataset(tmp_path / "s32")
    assert str(info.value) == "singer32_{train,validate,test}.json: singer 'ghost' has no songs in any split file"


def test_split_files_beside_a_singer_tree_are_used(tmp_path, put):
    singers = singer_names(3)
    root = tmp_path / "data"
    splits = json_splits(singers)
    for part in splits.values():
        for singer, ids in part.items():
            for file_id in ids:
                put(root / singer / f"{file_id.removesuffix('.wav')}.flac")
    write_json_splits(root, "singer60", splits)
    assert detect_layout(root) == "singer60"
    ds = load_dataset(root)
    assert ds.name == "singer60" and ds.split_rule.startswith("dataset split files singer60_{train,validate,test}")
    assert ds.counts() == {s: {"train": 8, "val": 1, "test": 1} for s in singers}


def test_singer60_by_count_and_singer32_by_count_else_folder(tmp_path, put):
    make_singer_tree(tmp_path / "sixty", put, singer_names(60), n_songs=3)
    assert detect_layout(tmp_path / "sixty") == "singer60"
    ds = load_dataset(tmp_path / "sixty")
    assert ds.name == "singer60" and len(ds.singers()) == 60 and len(ds.tracks) == 180
    assert set(map(tuple, (c.values() for c in ds.counts().values()))) == {(1, 1, 1)}
    make_singer_tree(tmp_path / "thirtytwo", put, singer_names(32), n_songs=3)
    assert detect_layout(tmp_path / "thirtytwo") == "singer32"
    make_singer_tree(tmp_path / "five", put, singer_names(5), n_songs=3)
    assert detect_layout(tmp_path / "five") == "folder"


def test_split_layout_without_a_name_or_paper_count_must_be_named(tmp_path, put):
    make_wav16k(tmp_path / "mine", put, "mine", singer_names(2))
    with pytest.raises(DatasetError, match=r"with 2 singers; cannot tell singer32 from singer60"):
        detect_layout(tmp_path / "mine")
    assert load_dataset(tmp_path / "mine", kind="singer60").name == "singer60"


# --- folder ----------------------------------------------------------------------------------

def test_folder_with_albums_splits_by_album(tmp_path, put):
    for singer in ("ann", "bob", "cat"):
        for album in ("A1", "A2", "A3", "A4"):
            for s in range(2):
                put(tmp_path / singer / album / f"s{s}.ogg")
    assert detect_layout(tmp_path) == "folder"
    ds = load_dataset(tmp_path)
    assert ds.layout == "folder: <singer>/[<album>/]<song> (3 singers, 24 songs)"
    assert ds.split_rule == ("album split 2/1/1 per singer (every singer has >= 3 albums; 4/1/1 needs 6 albums, "
                             "here 4 each), seed 0")  # what the split really does for 4 albums
    assert ds.counts() == {s: {"train": 4, "val": 2, "test": 2} for s in ("ann", "bob", "cat")}
    for parts in albums_by_split(ds).values():
        assert [len(parts[p]) for p in ("train", "val", "test")] == [2, 1, 1]
        assert not (parts["train"] & parts["val"] or parts["train"] & parts["test"] or parts["val"] & parts["test"])
    assert ds.tracks[0].song_id == "ann/A1/s0" and ds.tracks[0].album == "A1"


def test_folder_without_enough_albums_falls_back_to_the_song_split(tmp_path, put):
    make_singer_tree(tmp_path / "flat", put, ["ann", "bob"], n_songs=10, ext=".mp3")
    ds = load_dataset(tmp_path / "flat")
    assert ds.split_rule == "song split 8:1:1 per singer (no album folders), seed 0"
    assert ds.counts() == {s: {"train": 8, "val": 1, "test": 1} for s in ("ann", "bob")}
    for singer, n_albums in (("ann", 3), ("bob", 2)):
        for a in range(n_albums):
            for s in range(4):
                put(tmp_path / "few" / singer / f"A{a}" / f"s{s}.wav")
    few = load_dataset(tmp_path / "few")
    assert few.split_rule == ("song split 8:1:1 per singer (singer 'bob' has 2 album(s), fewer than 3; "
                              "albums leak across splits), seed 0")
    explicit = load_dataset(tmp_path / "flat", split="song")
    assert "song split" in explicit.split_rule and "(albums leak across splits)" in explicit.split_rule
    with pytest.raises(DatasetError, match=r"folder dataset has no split files; use the album or song split"):
        load_dataset(tmp_path / "flat", split="lists")


def test_folder_skips_empty_singer_folders_with_a_warning_and_rejects_tiny_singers(tmp_path, put, caplog):
    make_singer_tree(tmp_path, put, ["ann", "bob"], n_songs=5)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("no songs here")
    with caplog.at_level(logging.WARNING, logger="singerid.datasets"):
        ds = load_dataset(tmp_path)
    assert ds.singers() == ("ann", "bob")
    assert f"{tmp_path / 'notes'}: no audio files, not a singer folder; skipped" in caplog.text
    put(tmp_path / "cid" / "only.wav")
    put(tmp_path / "cid" / "other.wav")
    with pytest.raises(DatasetError) as info:
        load_dataset(tmp_path)
    assert str(info.value) == "singer 'cid' has 2 songs; the split 8/1/1 needs at least 3 per singer"


def test_two_files_of_one_song_are_both_kept_and_do_not_stop_a_run(tmp_path, put, caplog):
    make_singer_tree(tmp_path, put, ["ann", "bob"], n_songs=3)
    put(tmp_path / "ann" / "song_00.mp3")
    ids = [t.song_id for t in load_dataset(tmp_path).tracks if t.singer == "ann"]
    assert len(ids) == 4 and len(set(ids)) == 4 and any(i.startswith("ann/song_00.") for i in ids)
    assert "two audio files for song 'ann/song_00'" in caplog.text


# --- unknown layouts and bad options --------------------------------------------------------------

def test_unknown_layouts_name_what_was_expected_and_what_was_found(tmp_path, put):
    with pytest.raises(DatasetError) as info:
        load_dataset(tmp_path / "missing")
    assert str(info.value) == f"{tmp_path / 'missing'}: no such directory"
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(DatasetError) as info:
        detect_layout(tmp_path / "file.txt")
    assert str(info.value) == f"{tmp_path / 'file.txt'}: is a file, expected a dataset directory"
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError) as info:
        detect_layout(tmp_path / "empty")
    assert str(info.value) == f"{tmp_path / 'empty'}: no audio files under it (empty directory); {EXPECTED}"
    for name in ("a", "b"):
        (tmp_path / "docs" / name).mkdir(parents=True)
    (tmp_path / "docs" / "notes.txt").write_text("x")
    with pytest.raises(DatasetError) as info:
        detect_layout(tmp_path / "docs")
    assert str(info.value) == (f"{tmp_path / 'docs'}: no audio files under it "
                               f"(2 folders, 1 other file ('a', 'b', 'notes.txt')); {EXPECTED}")
    for i in range(4):
        put(tmp_path / "loose" / f"{i}.wav")
    with pytest.raises(DatasetError) as info:
        load_dataset(tmp_path / "loose")
    assert str(info.value) == (f"{tmp_path / 'loose'}: 4 audio file(s) directly in it "
                               f"but no <singer>/ folders; {EXPECTED}")


def test_wrong_explicit_kind_and_bad_options(tmp_path, put):
    make_singer_tree(tmp_path, put, ["ann", "bob"], n_songs=3)
    with pytest.raises(DatasetError, match=r"not an artist20 directory \(no mp3s-32k/ folder in it\)"):
        load_dataset(tmp_path, kind="artist20")
    with pytest.raises(ParameterError, match=r"unknown dataset kind 'gtzan'"):
        load_dataset(tmp_path, kind="gtzan")
    with pytest.raises(ParameterError, match=r"unknown split mode 'random'"):
        load_dataset(tmp_path, split="random")
    with pytest.raises(ParameterError, match=r"seed must be a non-negative integer, got -1"):
        load_dataset(tmp_path, seed=-1)
    ds = load_dataset(tmp_path)
    assert ds.select("all") == ds.tracks
    assert len(ds.select("train")) + len(ds.select("val")) + len(ds.select("test")) == len(ds.tracks)
    with pytest.raises(ParameterError, match=r"unknown split 'dev': use one of train, val, test, all"):
        ds.select("dev")


def test_reading_4200_files_is_fast(tmp_path, put):
    import time
    make_wav16k(tmp_path / "singer60", put, "singer60", singer_names(60), n_songs=70)
    start = time.perf_counter()
    ds = load_dataset(tmp_path / "singer60")
    seconds = time.perf_counter() - start
    assert len(ds.tracks) == 4200 and ds.counts()["singer_00"] == {"train": 68, "val": 1, "test": 1}
    assert seconds < 2.0, seconds


# --- the scan command --------------------------------------------------------------------------

def test_scan_prints_layout_rule_and_table(tmp_path, put, capsys):
    make_artist20(tmp_path, put)
    code, out, err = run_cli(capsys, "scan", str(tmp_path))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "dataset: artist20"
    assert lines[2] == "split:   album split 4/1/1 per singer (paper), seed 0"
    assert "singer     train    val   test    all" in lines
    assert "aerosmith      8      2      2     12" in lines
    assert "total         24      6      6     36" in lines
    assert lines[-1] == "3 singers, 36 songs (train 24, val 6, test 6)"


def test_scan_json(tmp_path, put, capsys):
    make_singer_tree(tmp_path, put, ["ann", "bob"], n_songs=10)
    code, out, _ = run_cli(capsys, "scan", str(tmp_path), "--split", "song", "--seed", "7", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["dataset"] == "folder" and data["seed"] == 7 and data["n_songs"] == 20
    assert data["split_rule"].endswith("(albums leak across splits), seed 7")
    assert data["counts"]["ann"] == {"train": 8, "val": 1, "test": 1}
    assert data["totals"] == {"train": 16, "val": 2, "test": 2}


def test_scan_exit_codes(tmp_path, put, capsys):
    code, _, err = run_cli(capsys, "scan", str(tmp_path / "missing"))
    assert (code, err) == (1, f"Error: {tmp_path / 'missing'}: no such directory\n")
    code, _, err = run_cli(capsys, "scan", str(tmp_path))
    assert code == 1 and err.startswith(f"Error: {tmp_path}: no audio files under it (empty directory)")
    code, _, err = run_cli(capsys, "scan", str(tmp_path), "--split", "random")
    assert code == 2 and "Invalid value for '--split'" in err
    code, _, err = run_cli(capsys, "scan", str(tmp_path), "--seed", "-3")
    assert code == 2 and "Invalid value for '--seed'" in err
    code, _, err = run_cli(capsys, "scan", str(tmp_path), "--dataset", "gtzan")
    assert code == 2 and "Invalid value for '--dataset'" in err
    code, out, _ = run_cli(capsys, "scan", "--help")
    assert code == 0 and "Example:" in out and "singerid scan" in out
