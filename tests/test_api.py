"""The public Python API (singerid.open & co.) on a real small home."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import soundfile as sf

import singerid
from singerid.errors import ArtefactError, AudioError, DatasetError, ParameterError

pytestmark = pytest.mark.usefixtures("one_torch_thread_module")


@pytest.fixture(scope="module")
def sid(ready_home):
    with singerid.open(ready_home.home.root) as opened:
        yield opened


def test_identify_path_matches_the_true_singer_and_serialises(sid, ready_home):
    tests = ready_home.songs("test")
    answers = [sid.identify(p) for p in tests]
    correct = sum(a.singer == ready_home.singer_of(p) for a, p in zip(answers, tests))
    assert correct >= len(tests) - 1  # the easy corpus: at most one miss
    d = answers[0].to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["ok"] is True and d["known"] is True and d["song"] == str(tests[0])
    assert d["evidence"] and {"song", "singer", "similarity", "query_offset_s", "reference_offset_s"} <= set(d["evidence"][0])


def test_identify_waveform_equals_identify_file(sid, ready_home):
    path = ready_home.songs("test")[0]
    samples, rate = sf.read(str(path), dtype="float32")
    from_file = sid.identify(path)
    from_wave = sid.identify(samples, sr=rate, name="upload.wav")
    assert from_wave.song == "upload.wav"
    assert (from_wave.singer, from_wave.n_blocks) == (from_file.singer, from_file.n_blocks)
    assert from_wave.vote_share == pytest.approx(from_file.vote_share)
    stereo = sid.identify(np.stack([samples, samples], axis=1), sr=rate)
    assert stereo.singer == from_file.singer


def test_waveform_at_another_rate_is_resampled(sid, ready_home):
    path = ready_home.songs("test")[1]
    samples, rate = sf.read(str(path), dtype="float32")
    import soxr

    at_44k = soxr.resample(samples, rate, 44_100)
    assert sid.identify(at_44k, sr=44_100).singer == sid.identify(path).singer


@pytest.mark.parametrize("call, message", [
    (lambda s: s.identify(np.zeros(16000, np.float32) + 0.1), "needs its sample rate"),
    (lambda s: s.identify("x.wav", sr=16000), "sr is only for waveforms"),
    (lambda s: s.identify(np.zeros(32000, np.float32), sr=16000), "silent"),
    (lambda s: s.identify(np.full(32000, np.nan, np.float32), sr=16000), "NaN"),
    (lambda s: s.identify(np.ones(100, np.float32) * 0.5, sr=16000), "shorter than one block"),
    (lambda s: s.identify(3.0), "must be a path or a numpy array"),
    (lambda s: s.identify("x.wav", kay=3), "unknown option"),
    (lambda s: s.identify("x.wav", method="magic"), "method must be one of"),
])
def test_bad_input_is_one_clear_error(sid, call, message):
    with pytest.raises((ParameterError, AudioError), match=message):
        call(sid)


def test_identify_many_streams_and_reports_bad_files(sid, ready_home, tmp_path):
    bad = tmp_path / "bad.mp3"
    bad.write_bytes(b"not audio at all")
    songs = [ready_home.songs("test")[0], bad, tmp_path / "missing.wav", ready_home.songs("test")[1]]
    results = list(sid.identify_many(songs))
    assert [r.ok for r in results] == [True, False, False, True]
    assert "bad.mp3" in results[1].error and results[1].kind == "AudioError"
    assert results[2].to_dict() == {"song": str(songs[2]), "ok": False, "error": f"{songs[2]}: no such file",
                                    "error_kind": "AudioError"}
    with pytest.raises(ParameterError):
        next(sid.identify_many(songs, k=0))


def test_unknown_singer_is_none_not_a_name(sid, ready_home):
    answer = sid.identify(ready_home.songs("test")[0], min_similarity=0.9999999)
    assert answer.singer is None and not answer.known and answer.predicted
    assert answer.to_dict()["singer"] is None and answer.to_dict()["known"] is False


def test_softmax_names_its_score(sid, ready_home):
    answer = sid.identify(ready_home.songs("test")[0], method="softmax")
    assert answer.method == "softmax" and answer.to_dict()["similarity_kind"] == "mean top probability"
    assert 0.0 < answer.similarity <= 1.0


def test_singers_similar_and_the_map(sid, ready_home):
    names = [s.name for s in sid.singers()]
    assert names == sorted({t.singer for t in ready_home.tracks})
    assert all(s.n_blocks > 0 and s.kind == "trained" for s in sid.singers())
    near = sid.similar("singer0", top=2)
    assert len(near) == 2 and "singer0" not in {n.singer for n in near}
    assert near[0].similarity >= near[1].similarity
    all_near = sid.similar("singer0", top=10)
    assert len(all_near) == len(names) - 1
    with pytest.raises(DatasetError, match="no singer 'Nobody'"):
        sid.similar("Nobody")
    song = ready_home.songs("test")[0]
    by_song = sid.similar(song=song, top=len(names))
    assert by_song[0].singer == sid.identify(song).singer
    tmap = sid.timbre_map().to_dict()
    assert {p["singer"] for p in tmap["singers"]} == set(names)
    answer = sid.identify(song, similar=2, place_on_map=True)
    assert len(answer.similar_singers) == 2 and answer.map_point is not None
    assert set(answer.to_dict()["map_point"]) == {"x", "y"}


def test_info_is_a_record(sid):
    home_info = sid.info(check=True)
    assert home_info.consistent and home_info.n_singers == 4
    assert home_info.to_dict()["problems"] == []


def test_open_a_home_without_an_index_says_what_to_run(tmp_path):
    with pytest.raises(ArtefactError, match="singerid train"):
        singerid.open(tmp_path / "empty")


def test_enrol_while_identifying_from_threads(ready_home, tmp_path):
    """Queries keep answering (no error) while enrol and remove write; the enrolled singer is found after."""
    from embed_corpus import write_song

    home = ready_home.copy(tmp_path / "home")
    new_songs = [write_song(tmp_path / "new" / f"n{i}.wav", singer=5, song_seed=9000 + i, seconds=5.0) for i in range(3)]
    probe = write_song(tmp_path / "new" / "probe.wav", singer=5, song_seed=9100, seconds=5.0)
    errors: list[BaseException] = []
    answers: list[str | None] = []
    stop = threading.Event()
    with singerid.open(home.root) as sid:
        def reader() -> None:
            while not stop.is_set():
                try:
                    answers.append(sid.identify(ready_home.songs("test")[0]).singer)
                except BaseException as exc:  # noqa: BLE001 - the test counts every error
                    errors.append(exc)

        threads = [threading.Thread(target=reader) for _ in range(2)]
        for t in threads:
            t.start()
        try:
            result = sid.enrol("Newcomer", new_songs)
        finally:
            stop.set()
            for t in threads:
                t.join()
        assert errors == [] and answers and set(answers) <= {t.singer for t in ready_home.tracks}
        assert result.n_songs == 3 and result.failures == () and result.index_vectors is not None
        assert sid.identify(probe).singer == "Newcomer"
        assert "Newcomer" in {s.name for s in sid.singers()}
        removed = sid.remove(singer="Newcomer")
        assert removed.n_songs == 3 and sid.identify(probe).singer != "Newcomer"


def test_another_process_writing_is_picked_up(ready_home, tmp_path):
    from embed_corpus import write_song

    home = ready_home.copy(tmp_path / "home")
    songs = [write_song(tmp_path / "new" / f"n{i}.wav", singer=5, song_seed=9200 + i, seconds=5.0) for i in range(3)]
    probe = write_song(tmp_path / "new" / "probe.wav", singer=5, song_seed=9300, seconds=5.0)
    with singerid.open(home.root) as sid:
        assert sid.identify(probe).singer != "Late"
        singerid.enrol(home.root, "Late", songs)  # as another process would: not through this Identifier
        assert sid.identify(probe).singer == "Late"
