"""The synthetic-singer corpus: layout, lists, manifest, determinism, audio, errors, CLI."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from singerid import constants as C
from singerid.audio import load_audio
from singerid.cli import main
from singerid.datasets import load_dataset
from singerid.datasets.split import assign_split
from singerid.datasets.synth import CorpusSpec, generate_corpus, plan_corpus, read_manifest, stem_paths
from singerid.datasets.synth_music import draw_album_style, render_accompaniment
from singerid.datasets.synth_score import SCALES, Note, compose_song
from singerid.datasets.synth_voice import STFT_HOP, STFT_SAMPLES, draw_voice, filter_frames, render_voice
from singerid.errors import ArtefactError, ParameterError

TINY = CorpusSpec(singers=3, albums=3, songs_per_album=2, seconds=3.0, seed=7)
SR = 16_000


def tree_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def read_list(root: Path, name: str) -> list[str]:
    return (root / "lists" / name).read_text().splitlines()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "corpus"
    return out, generate_corpus(out, TINY, workers=1)


# --- layout, lists, manifest ----------------------------------------------------------------

def test_layout_is_artist20(tiny):
    root, manifest = tiny
    files = sorted((root / "mp3s-32k").rglob("*.mp3"))
    assert len(files) == TINY.n_songs == len(manifest.songs) == 18
    for f in files:
        singer, album, name = f.relative_to(root / "mp3s-32k").parts
        assert re.fullmatch(r"singer_\d{2}_(bass|baritone|tenor|alto|mezzo|soprano)", singer)
        assert re.fullmatch(r"[A-Z][a-z]+_[A-Z][a-z]+", album)
        assert re.fullmatch(r"\d{2}-[A-Z][a-z]+_[A-Z][a-z]+\.mp3", name)
    assert sorted(p.name for p in root.iterdir()) == ["corpus.json", "lists", "mp3s-32k"]
    assert not list(root.rglob("*.part"))


def test_lists_match_files_and_album_split(tiny):
    root, _ = tiny
    on_disk = sorted(str(p.relative_to(root / "mp3s-32k").with_suffix("")) for p in root.rglob("*.mp3"))
    assert read_list(root, "a20-all-tracks.list") == on_disk
    parts = {tag: read_list(root, f"a20-{tag}-tracks.list") for tag in ("trn", "val", "tst")}
    assert sorted(parts["trn"] + parts["val"] + parts["tst"]) == on_disk
    albums = {tag: read_list(root, f"a20-{tag}-albums.list") for tag in ("trn", "val", "tst")}
    for tag in parts:
        assert sorted({"/".join(t.split("/")[:2]) for t in parts[tag]}) == albums[tag]
    singers = sorted({t.split("/")[0] for t in on_disk})
    for singer in singers:  # the lists are the seeded album split a reader computes
        names = sorted({t.split("/")[1] for t in on_disk if t.startswith(singer + "/")})
        expected = assign_split(names, seed=TINY.seed, key=singer, ratio=C.ARTIST20_ALBUM_SPLIT)
        for tag, split in (("trn", "train"), ("val", "val"), ("tst", "test")):
            mine = sorted(a.split("/")[1] for a in albums[tag] if a.startswith(singer + "/"))
            assert mine == sorted(a for a, s in expected.items() if s == split)
            assert len(mine) == 1  # 3 albums -> 1/1/1


@pytest.mark.parametrize("mode", ["album", "lists"])
def test_the_dataset_reader_sees_the_generated_split(tiny, mode):
    root, manifest = tiny
    dataset = load_dataset(root, seed=TINY.seed, split=mode)
    assert dataset.name == "artist20"
    assert {(t.song_id, t.singer, t.album, t.split) for t in dataset.tracks} == \
        {(s.song_id, s.singer, s.album, s.split) for s in manifest.songs}


def test_manifest_records_how_everything_was_made(tiny):
    root, manifest = tiny
    data = json.loads((root / "corpus.json").read_text())
    assert data["generator"] == "singerid synth-corpus" and data["status"] == "complete"
    assert data["spec"] == TINY.to_dict()
    assert len(data["singers"]) == 3 and len(data["albums"]) == 9 and len(data["songs"]) == 18
    voice = data["singers"][0]["voice"]
    for key in ("low_midi", "high_midi", "tract_scale", "formant_offsets", "open_quotient", "tilt_db_per_octave",
                "jitter", "shimmer", "breathiness", "vibrato_rate_hz", "vibrato_depth_semitones"):
        assert key in voice
    style = data["albums"][0]["style"]
    for key in ("tempo_bpm", "key_root", "mode", "progressions", "chords", "bass", "drums", "reverb_seconds"):
        assert key in style
    for song in manifest.songs:
        assert -2.0 <= song.voice_ratio_db <= 7.0
        assert 0.3 < song.sung_fraction <= 1.0  # a 3-s song may be one phrase
        assert hashlib.sha256((root / song.path).read_bytes()).hexdigest() == song.sha256
    assert read_manifest(root) == manifest


def test_read_manifest_of_a_plain_directory_fails(tmp_path):
    with pytest.raises(ArtefactError, match="corpus.json: missing or incomplete"):
        read_manifest(tmp_path)


# --- determinism ------------------------------------------------------------------------------

def test_same_seed_gives_identical_bytes_whatever_the_workers(tiny, tmp_path):
    root, _ = tiny
    again = tmp_path / "again"
    generate_corpus(again, TINY, workers=2)
    assert tree_hashes(again) == tree_hashes(root)


def test_other_seed_gives_other_audio(tiny, tmp_path):
    root, _ = tiny
    other = generate_corpus(tmp_path / "other", dataclasses.replace(TINY, seed=8), workers=1)
    first = {s.sha256 for s in read_manifest(root).songs}
    assert first.isdisjoint({s.sha256 for s in other.songs})


def test_regenerating_replaces_a_previous_corpus(tmp_path):
    out = tmp_path / "c"
    spec = CorpusSpec(singers=2, albums=3, songs_per_album=1, seconds=2.0, seed=1)
    first = generate_corpus(out, spec)
    stamp = {s.path: (out / s.path).stat().st_mtime_ns for s in first.songs}
    kept = generate_corpus(out, spec)
    assert kept == first and first.fresh and not kept.fresh  # same spec: kept as it is
    assert {s.path: (out / s.path).stat().st_mtime_ns for s in first.songs} == stamp
    second = generate_corpus(out, CorpusSpec(singers=2, albums=3, songs_per_album=1, seconds=2.0, seed=2))
    on_disk = sorted(str(p.relative_to(out)) for p in out.rglob("*.mp3"))
    assert on_disk == sorted(s.path for s in second.songs)  # nothing left of the first corpus


# --- audio --------------------------------------------------------------------------------------

def test_an_interrupted_or_damaged_corpus_is_generated_again(tmp_path):
    out = tmp_path / "c"
    spec = CorpusSpec(singers=2, albums=3, songs_per_album=1, seconds=2.0, seed=1)
    (out / "mp3s-32k" / "old").mkdir(parents=True)
    (out / "mp3s-32k" / "old" / ".01-x.mp3.part").write_bytes(b"half")
    (out / "corpus.json").write_text(json.dumps({"generator": "singerid synth-corpus", "status": "incomplete"}))
    manifest = generate_corpus(out, spec)
    assert not (out / "mp3s-32k" / "old").exists() and manifest.fresh
    data = json.loads((out / "corpus.json").read_text())
    del data["singers"]  # same spec, damaged manifest
    (out / "corpus.json").write_text(json.dumps(data))
    assert generate_corpus(out, spec).fresh
    assert read_manifest(out) == manifest


def test_audio_decodes_finite_loud_and_of_the_right_length(tiny):
    root, manifest = tiny
    for song in manifest.songs:
        info = sf.info(str(root / song.path))
        assert (info.samplerate, info.channels) == (SR, 1)
        y = load_audio(root / song.path, sample_rate=SR)
        assert np.all(np.isfinite(y))
        assert 0.1 < np.max(np.abs(y)) <= 1.0
        assert np.sqrt(np.mean(y ** 2)) > 0.01
        assert abs(y.size / SR - TINY.seconds) < 0.15  # MP3 frames pad the end a little


def test_flac_has_the_exact_length_and_the_asked_sample_rate(tmp_path):
    spec = CorpusSpec(singers=2, albums=3, songs_per_album=1, seconds=2.5, audio_format="flac", sample_rate=22050)
    manifest = generate_corpus(tmp_path / "f", spec)
    for song in manifest.songs:
        assert song.path.endswith(".flac")
        y, sr = sf.read(str(tmp_path / "f" / song.path))
        assert sr == 22050 and y.shape == (int(2.5 * 22050),)


def test_voice_sings_the_written_pitch():
    import librosa

    voice = draw_voice(np.random.default_rng(0), "tenor")
    melody = [Note(start_seconds=0.2, duration_seconds=1.5, midi=57.0, vowel="a")]  # A3 = 220 Hz
    y = render_voice(voice, melody, n_samples=2 * SR, sample_rate=SR, rng=np.random.default_rng(1))
    assert np.all(np.isfinite(y)) and np.max(np.abs(y[: int(0.1 * SR)])) < 1e-3  # silent before the note
    f0 = librosa.yin(y[int(0.6 * SR):int(1.6 * SR)].astype(np.float32), fmin=80, fmax=800, sr=SR)
    assert abs(np.median(f0) - 220.0) < 220.0 * 0.03  # within half a semitone (vibrato averages out)


def test_shorter_vocal_tract_raises_the_spectrum():
    base = draw_voice(np.random.default_rng(0), "alto")
    melody = [Note(start_seconds=0.0, duration_seconds=2.0, midi=62.0, vowel="a")]

    def centroid(scale: float) -> float:
        voice = dataclasses.replace(base, tract_scale=scale)
        y = render_voice(voice, melody, n_samples=2 * SR, sample_rate=SR, rng=np.random.default_rng(3))
        spec = np.abs(np.fft.rfft(y))
        return float(np.sum(spec * np.fft.rfftfreq(y.size, 1 / SR)) / np.sum(spec))

    assert centroid(1.2) > centroid(1.0) * 1.05


def test_filter_frames_with_unit_gain_returns_the_input():
    x = np.random.default_rng(0).standard_normal(3 * SR + 37)
    gains = np.ones((x.size // STFT_HOP + 1, STFT_SAMPLES // 2 + 1))
    assert np.allclose(filter_frames(x, gains), x, atol=1e-12)
    assert np.allclose(filter_frames(x, 0.5 * gains), 0.5 * x, atol=1e-12)


def test_melody_stays_in_the_singer_range_and_the_key():
    rng = np.random.default_rng(5)
    score = compose_song(seconds=20.0, tempo_bpm=100.0, beats_per_bar=4, key_root=2, mode="minor",
                         progression=(0, 3, 4, 4), low_midi=50.0, high_midi=68.0, rng=rng)
    assert score.melody
    for a, b in zip(score.melody, score.melody[1:]):
        assert b.start_seconds >= a.start_seconds + a.duration_seconds - 1e-9  # no overlaps
    for note in score.melody:
        assert 50 <= note.midi <= 68 and (int(note.midi) - 2) % 12 in SCALES["minor"]
    sung = sum(n.duration_seconds for n in score.melody if n.start_seconds < 20.0) / 20.0
    assert 0.5 < sung < 0.95  # phrases with breaths between them


def test_accompaniment_is_finite_and_normalised():
    style = draw_album_style(np.random.default_rng(2))
    score = compose_song(seconds=4.0, tempo_bpm=style.tempo_bpm, beats_per_bar=style.beats_per_bar,
                         key_root=style.key_root, mode=style.mode, progression=style.progressions[0],
                         low_midi=55.0, high_midi=72.0, rng=np.random.default_rng(3))
    y = render_accompaniment(style, score, n_samples=4 * SR, sample_rate=SR, rng=np.random.default_rng(4))
    assert np.all(np.isfinite(y)) and abs(np.sqrt(np.mean(y ** 2)) - 1.0) < 1e-6


def test_default_singers_share_pitch_ranges(tmp_path):
    singers, _, _ = plan_corpus(tmp_path, CorpusSpec())
    for s in singers:  # pitch alone cannot name the singer: others sing an octave of each range
        overlaps = [o for o in singers if o is not s
                    and min(s.voice.high_midi, o.voice.high_midi) - max(s.voice.low_midi, o.voice.low_midi) >= 12]
        assert len(overlaps) >= 2, s.name


# --- bad arguments ---------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    ({"singers": 1}, "singers must be an integer from 2 to 999, got 1 (one singer cannot be identified)"),
    ({"albums": 2}, "albums must be an integer from 3 to 99, got 2 (the album split needs train, val and test albums)"),
    ({"songs_per_album": 0}, "songs_per_album must be an integer from 1 to 99, got 0"),
    ({"seed": -1}, "seed must be an integer from 0 to"),
    ({"seconds": 1.0}, "seconds must be between 2 and 900, got 1.0"),
    ({"audio_format": "wav"}, "audio_format must be 'mp3' or 'flac', got 'wav'"),
    ({"sample_rate": 12345}, "sample_rate 12345 is not usable for mp3; use one of 8000, 11025"),
    ({"voice_ratio_db": (6.0, -3.0)}, "voice_ratio_db must be (low, high) with -30 <= low <= high <= 30, got (6.0, -3.0)"),
    ({"stems": "yes"}, "stems must be True or False, got 'yes'"),
])
def test_bad_spec_is_a_parameter_error(kwargs, message):
    with pytest.raises(ParameterError) as err:
        CorpusSpec(**kwargs)
    assert str(err.value).startswith(message)


def test_refuses_a_non_empty_directory_that_is_not_a_corpus(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ParameterError, match="directory is not empty and is not a synthetic corpus"):
        generate_corpus(tmp_path, TINY)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
    with pytest.raises(ParameterError, match="exists and is not a directory"):
        generate_corpus(tmp_path / "notes.txt", TINY)
    with pytest.raises(ParameterError, match="workers must be a positive integer, got 0"):
        generate_corpus(tmp_path / "new", TINY, workers=0)


# --- command line ----------------------------------------------------------------------------

def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_cli_writes_a_corpus_and_a_summary_line(tmp_path, capsys):
    out = tmp_path / "cli"
    code, stdout, _ = run_cli(["synth-corpus", str(out), "--singers", "2", "--albums", "3", "--songs-per-album", "1",
                               "--seconds", "2", "--seed", "3", "--format", "flac", "--workers", "1"], capsys)
    assert code == 0
    assert stdout.startswith("wrote 6 songs (2 singers x 3 albums x 1 songs")
    assert "albums train/val/test 2/2/2" in stdout and stdout.count("\n") == 1
    assert len(list(out.rglob("*.flac"))) == 6 and (out / "lists" / "a20-tst-tracks.list").is_file()
    code, stdout, _ = run_cli(["synth-corpus", str(out), "--singers", "2", "--albums", "3", "--songs-per-album", "1",
                               "--seconds", "2", "--seed", "3", "--format", "flac", "--workers", "1"], capsys)
    assert code == 0 and stdout == f"{out} already holds this corpus (6 songs, 0.00 h, files checked); nothing to do\n"


@pytest.mark.parametrize("args, message", [
    (["--singers", "1"], "Error: singers must be an integer from 2 to 999, got 1"),
    (["--albums", "2"], "Error: albums must be an integer from 3 to 99, got 2"),
    (["--seconds", "0.5"], "Error: seconds must be between 2 and 900, got 0.5"),
    (["--workers", "0"], "Error: workers must be a positive integer, got 0"),
])
def test_cli_bad_arguments_exit_2_with_one_line(tmp_path, capsys, args, message):
    code, _, stderr = run_cli(["synth-corpus", str(tmp_path / "x"), *args], capsys)
    assert code == 2
    assert stderr.startswith(message) and stderr.count("\n") == 1


def test_cli_refuses_a_foreign_directory(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("x")
    code, _, stderr = run_cli(["synth-corpus", str(tmp_path)], capsys)
    assert code == 2 and "is not a synthetic corpus" in stderr


def test_cli_defaults_are_the_spec_defaults():
    from singerid.cli.corpus import synth_corpus

    defaults = {p.name: p.default for p in synth_corpus.params}
    spec = CorpusSpec()
    for name in ("singers", "albums", "songs_per_album", "seconds", "seed", "audio_format", "sample_rate",
                 "voice_ratio_db", "stems"):
        assert defaults[name] == getattr(spec, name), name


# --- stems -----------------------------------------------------------------------------------

STEMS = CorpusSpec(singers=2, albums=3, songs_per_album=1, seconds=3.0, seed=7, audio_format="flac", stems=True)


@pytest.fixture(scope="module")
def stems_pair(tmp_path_factory):
    """The same corpus without and with stems: (plain root, plain manifest, stems root, stems manifest)."""
    base = tmp_path_factory.mktemp("stems")
    plain = generate_corpus(base / "plain", dataclasses.replace(STEMS, stems=False))
    with_stems = generate_corpus(base / "stems", STEMS)
    return base / "plain", plain, base / "stems", with_stems


def snr_db(reference: np.ndarray, estimate: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(reference ** 2) / max(np.sum((reference - estimate) ** 2), 1e-20)))


def test_stem_paths_mirror_the_song_path():
    vocals, accompaniment = stem_paths("R", "mp3s-32k/singer_01_tenor/Album/01-Title.mp3")
    assert vocals == Path("R/stems/mp3s-32k/singer_01_tenor/Album/01-Title.vocals.flac")
    assert accompaniment == Path("R/stems/mp3s-32k/singer_01_tenor/Album/01-Title.accompaniment.flac")
    for bad in ("/abs/01-x.mp3", "../mp3s-32k/a/b/01-x.mp3", ""):
        with pytest.raises(ParameterError, match="relpath must be a song path inside the corpus root"):
            stem_paths("R", bad)


def test_stems_are_16_bit_flac_as_long_as_the_mix(stems_pair):
    _, _, root, manifest = stems_pair
    expected = set()
    for song in manifest.songs:
        vocals, accompaniment = stem_paths(root, song.path)
        assert vocals == root / "stems" / Path(song.path).with_suffix(".vocals.flac")
        mix = sf.info(str(root / song.path))
        for path, sha in zip((vocals, accompaniment), song.stems_sha256):
            info = sf.info(str(path))
            assert (info.samplerate, info.channels, info.subtype, info.frames) == (SR, 1, "PCM_16", mix.frames)
            assert hashlib.sha256(path.read_bytes()).hexdigest() == sha
            expected.add(path)
    assert set((root / "stems").rglob("*.*")) == expected and len(expected) == 2 * STEMS.n_songs
    data = json.loads((root / "corpus.json").read_text())
    assert data["spec"]["stems"] is True and read_manifest(root) == manifest


def test_vocals_plus_accompaniment_is_the_mix(stems_pair):
    _, _, root, manifest = stems_pair
    for song in manifest.songs:
        mix, _ = sf.read(str(root / song.path))
        vocals, accompaniment = (sf.read(str(p))[0] for p in stem_paths(root, song.path))
        assert snr_db(mix, vocals + accompaniment) > 20.0, song.song_id  # measured 31-59 dB (wet level)
        for stem in (vocals, accompaniment):  # both parts carry real signal, neither is the mix
            assert np.sqrt(np.mean(stem ** 2)) > 0.2 * np.sqrt(np.mean(mix ** 2))
            assert snr_db(mix, stem) < 10.0


def test_stems_change_neither_the_songs_nor_what_readers_see(stems_pair, tmp_path, capsys):
    plain_root, plain, root, _ = stems_pair
    assert tree_hashes(root / "mp3s-32k") == tree_hashes(plain_root / "mp3s-32k")  # same song bytes
    assert tree_hashes(root / "lists") == tree_hashes(plain_root / "lists")

    def tracks(where: Path, mode: str) -> list[tuple]:
        return [(t.song_id, t.singer, t.album, t.split, t.path.relative_to(where).as_posix())
                for t in load_dataset(where, seed=STEMS.seed, split=mode).tracks]

    unlisted = tmp_path / "unlisted"  # without lists/ the reader scans the tree
    shutil.copytree(root, unlisted, ignore=shutil.ignore_patterns("lists"))
    for mode in ("album", "lists", "song"):
        assert tracks(root, mode) == tracks(plain_root, mode)
        assert all(path.startswith("mp3s-32k/") for *_, path in tracks(root, mode))
    assert tracks(unlisted, "album") == tracks(root, "album")

    outputs = []
    for where in (plain_root, root, unlisted):
        code, stdout, _ = run_cli(["scan", str(where), "--json"], capsys)
        assert code == 0
        outputs.append({k: v for k, v in json.loads(stdout).items() if k != "root"})
    assert outputs[0] == outputs[1] and outputs[0]["n_songs"] == STEMS.n_songs
    assert outputs[2]["counts"] == outputs[0]["counts"]


def test_a_singers_vocal_stems_sing_in_its_range_on_every_album(stems_pair):
    import librosa

    _, _, root, manifest = stems_pair
    ranges = {s.name: (s.voice.low_midi, s.voice.high_midi) for s in manifest.singers}
    albums_seen: dict[str, set[str]] = {}
    for song in manifest.songs:
        vocals, _ = sf.read(str(stem_paths(root, song.path)[0]), dtype="float32")
        f0 = librosa.yin(vocals, fmin=60, fmax=1100, sr=SR, frame_length=1024, hop_length=256)
        rms = librosa.feature.rms(y=vocals, frame_length=1024, hop_length=256)[0]
        loud = rms > 0.3 * rms.max()  # within 10 dB of the loudest frame: sung notes
        midi = librosa.hz_to_midi(f0[loud])
        assert midi.size > 20, song.song_id  # the stem is sung, not silence
        low, high = ranges[song.singer]
        assert low - 1.0 <= np.median(midi) <= high + 1.0, (song.song_id, np.median(midi), low, high)
        albums_seen.setdefault(song.singer, set()).add(song.album)
    assert all(len(a) == STEMS.albums for a in albums_seen.values())


def test_stems_are_part_of_the_reuse_check(tmp_path):
    out = tmp_path / "c"
    spec = CorpusSpec(singers=2, albums=3, songs_per_album=1, seconds=2.0, seed=1, audio_format="flac")
    with_stems = dataclasses.replace(spec, stems=True)
    assert not generate_corpus(out, spec).spec.stems
    assert not (out / "stems").exists()
    made = generate_corpus(out, with_stems)  # stems asked of a corpus without them: made again
    assert made.fresh and all(p.is_file() for s in made.songs for p in stem_paths(out, s.path))
    assert not generate_corpus(out, with_stems).fresh
    served = generate_corpus(out, spec)  # a corpus with stems serves a spec without them
    assert not served.fresh and served.spec == with_stems
    victim = stem_paths(out, made.songs[0].path)[1]
    victim.unlink()  # a missing stem, then a damaged one: made again
    assert generate_corpus(out, with_stems).fresh and victim.is_file()
    victim.write_bytes(victim.read_bytes()[:-10])
    assert generate_corpus(out, with_stems).fresh
    assert read_manifest(out) == made


def test_a_manifest_from_before_stems_still_reads_and_is_reused(tmp_path):
    out = tmp_path / "old"
    spec = CorpusSpec(singers=2, albums=3, songs_per_album=1, seconds=2.0, seed=1)
    manifest = generate_corpus(out, spec)
    data = json.loads((out / "corpus.json").read_text())
    del data["spec"]["stems"]
    for song in data["songs"]:
        del song["stems_sha256"]
    (out / "corpus.json").write_text(json.dumps(data))
    assert read_manifest(out) == manifest
    assert not generate_corpus(out, spec).fresh


def test_cli_stems_option(tmp_path, capsys):
    out = tmp_path / "cli"
    code, stdout, _ = run_cli(["synth-corpus", str(out), "--singers", "2", "--albums", "3", "--songs-per-album", "1",
                               "--seconds", "2", "--format", "flac", "--workers", "1", "--stems"], capsys)
    assert code == 0 and stdout.endswith(f"; stems in {out / 'stems'}\n") and stdout.count("\n") == 1
    assert len(list((out / "stems").rglob("*.vocals.flac"))) == 6
    assert len(list((out / "stems").rglob("*.accompaniment.flac"))) == 6
