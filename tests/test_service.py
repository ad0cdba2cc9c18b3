"""The web service, driven as a client would: a real uvicorn on loopback, a real home, httpx.

Each endpoint's answer and its error statuses and bodies are pinned; /docs and the page are
checked for references to other hosts (everything must work offline); identify requests run
while enrol and remove write, with no error and no lost write.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf
from embed_corpus import write_song

import singerid
from singerid.service import ServiceLimits, create_app
from singerid.service.server import serve_in_thread

pytestmark = pytest.mark.usefixtures("one_torch_thread_module")

TOKEN = "s3cret-token"
LIMITS = ServiceLimits(max_upload_bytes=1024**2, max_seconds=20.0)  # small, so the limits are cheap to hit
EXTERNAL_URL = re.compile(r"https?://(?!127\.0\.0\.1|localhost|www\.w3\.org/2000/svg)[^\s\"'<>)]+")


@pytest.fixture(scope="module")
def server(ready_home):
    """A read-only server (no token: writes refused) over the session's ready home."""
    with singerid.open(ready_home.home) as identifier, serve_in_thread(create_app(identifier, limits=LIMITS)) as url, \
            httpx.Client(base_url=url, timeout=60) as client:
        yield client


@pytest.fixture
def writable(ready_home, tmp_path):
    """A server with a token over a private copy of the home."""
    home = ready_home.copy(tmp_path / "home")
    app = create_app(singerid.open(home), token=TOKEN, limits=LIMITS)
    with app.state.service.identifier, serve_in_thread(app) as url, \
            httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        yield client


def upload(path: Path, field: str = "song") -> dict:
    return {field: (path.name, path.read_bytes(), "audio/wav")}


def new_voice(folder: Path, n: int, *, voice: int = 4) -> list[Path]:
    """Songs of a voice the home has never heard (embed_corpus voices 4 and 5 are not in the ready home)."""
    return [write_song(folder / f"voice{voice}_{i}.wav", singer=voice, song_seed=7000 + 100 * voice + i, seconds=5.0)
            for i in range(n)]


def check_error(response: httpx.Response, status: int, kind: str, error: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["kind"] == kind
    assert "Traceback" not in body["error"]
    if error is not None:
        assert body["error"] == error
    return body


# --- read-only endpoints ------------------------------------------------------------------------

def test_health_says_what_the_home_holds(server, ready_home):
    body = server.get("/health").json()
    assert body["status"] == "ok" and body["problems"] == []
    assert body["home"] == str(ready_home.home.root)
    assert (body["singers"], body["songs"], body["vectors"]) == (4, 12, 48)
    assert body["model"]["kind"] == "attcrnn" and len(body["model"]["sha256"]) == 12
    assert body["writes"] == "disabled"
    assert body["limits"] == {"max_upload_mb": 1.0, "max_seconds": 20.0}


def test_identify_answers_with_singer_evidence_similar_singers_and_map_point(server, ready_home):
    song = ready_home.songs("test")[0]
    response = server.post("/identify", params={"similar": 2, "evidence": 2}, files=upload(song))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["song"] == song.name  # the client's file name, not the server's temporary path
    assert answer["ok"] and answer["known"] and answer["singer"] == ready_home.singer_of(song)
    assert 0.5 < answer["vote_share"] <= 1.0 and answer["n_blocks"] == 4 and answer["method"] == "knn"
    assert 1 <= len(answer["evidence"]) <= 2
    evidence = answer["evidence"][0]
    assert set(evidence) == {"song", "path", "singer", "album", "n_matches", "similarity", "query_offset_s",
                             "reference_offset_s"}
    assert evidence["singer"] == answer["singer"] and 0 <= evidence["query_offset_s"] <= 5
    assert [s["singer"] for s in answer["similar_singers"]][0] == answer["singer"]
    assert len(answer["similar_singers"]) == 2
    assert set(answer["map_point"]) == {"x", "y"}
    assert "temp" not in response.text and "singerid-upload" not in response.text


def test_identify_options_work_as_form_fields_too(server, ready_home):
    song = ready_home.songs("test")[1]
    response = server.post("/identify", files=upload(song), data={"evidence": "1", "method": "softmax", "top": "0"})
    answer = response.json()
    assert response.status_code == 200, response.text
    assert answer["method"] == "softmax" and len(answer["evidence"]) <= 1 and answer["runners_up"] == []
    assert "similar_singers" not in answer  # similar defaults to 0


@pytest.mark.parametrize(("params", "error"), [
    ({"k": "abc"}, "k must be an integer, got 'abc'"),
    ({"k": "0"}, "k must be >= 1, got 0"),
    ({"k": "5000"}, "k must be <= 1000 on this server, got 5000"),
    ({"top": "101"}, "top must lie in [0, 100], got 101"),
    ({"method": "vote"}, "method must be one of knn, softmax, got 'vote'"),
    ({"reject_unknown": "maybe"}, "reject_unknown must be true or false, got 'maybe'"),
    ({"kk": "3"}, "unknown option(s) kk; known: k, method, top, evidence, similar, min_similarity, min_share, "
                  "reject_unknown"),
])
def test_identify_refuses_a_bad_option_with_400(server, ready_home, params, error):
    response = server.post("/identify", params=params, files=upload(ready_home.songs("test")[0]))
    check_error(response, 400, "ParameterError", error)


def test_identify_refuses_bad_audio_with_422_and_the_one_line_audio_error(server, tmp_path):
    notes = tmp_path / "notes.wav"
    notes.write_text("not audio at all\n")
    check_error(server.post("/identify", files=upload(notes)), 422, "AudioError",
                "notes.wav: not a readable audio file (unknown format or corrupt header)")
    short = tmp_path / "blip.wav"
    sf.write(short, (0.3 * np.sin(np.arange(4000) / 5)).astype(np.float32), 16000)
    body = check_error(server.post("/identify", files=upload(short)), 422, "AudioError")
    assert body["error"].startswith("blip.wav: 0.25 s is shorter than one block")


def test_identify_without_a_file_is_a_400(server):
    check_error(server.post("/identify"), 400, "ParameterError",
                "send the audio file in the form field 'song' (multipart/form-data)")
    check_error(server.post("/identify", data={"song": "text"}), 400, "ParameterError",
                "form field 'song' must be an uploaded audio file, got text")


def test_an_upload_over_the_size_limit_is_a_413_before_or_while_reading(server):
    blob = b"\0" * (LIMITS.max_body_bytes + 1)
    error = "upload too large: 1.1 MiB or more, this server accepts at most 1 MiB per request"
    check_error(server.post("/identify", files={"song": ("big.wav", blob)}), 413, "UploadTooLarge", error)

    head = b'--x\r\nContent-Disposition: form-data; name="song"; filename="big.wav"\r\n\r\n'
    body = head + blob + b"\r\n--x--\r\n"

    def chunks():  # no Content-Length: the limit is found while reading
        for i in range(0, len(body), 65536):
            yield body[i:i + 65536]

    headers = {"Content-Type": "multipart/form-data; boundary=x"}
    body = check_error(server.post("/identify", content=chunks(), headers=headers), 413, "UploadTooLarge")
    assert body["error"].endswith("this server accepts at most 1 MiB per request")
    assert server.get("/health").status_code == 200  # and the server carries on


def test_a_song_over_the_duration_limit_is_a_413(server, tmp_path):
    long = tmp_path / "long.wav"
    sf.write(long, (0.2 * np.sin(np.arange(25 * 8000) / 3)).astype(np.float32), 8000)  # 25 s at 8 kHz, 400 kB
    check_error(server.post("/identify", files=upload(long)), 413, "AudioTooLong",
                "long.wav: 25 s is longer than this server accepts (20 s); send a shorter excerpt")


def test_singers_and_the_timbre_map(server):
    singers = server.get("/singers").json()["singers"]
    assert [s["name"] for s in singers] == ["singer0", "singer1", "singer2", "singer3"]
    assert singers[0] == {"name": "singer0", "kind": "trained", "n_songs": 3, "n_blocks": 12}
    tmap = server.get("/map").json()
    assert tmap["method"] == "PCA of singer centroids"
    assert [p["singer"] for p in tmap["singers"]] == [s["name"] for s in singers]
    assert all(isinstance(p["x"], float) and isinstance(p["y"], float) for p in tmap["singers"])


def test_similar_singers_to_a_singer_and_to_a_song(server, ready_home):
    body = server.get("/similar", params={"singer": "singer0", "top": 2}).json()
    assert body["singer"] == "singer0" and body["method"].startswith("cosine similarity of singer centroids")
    assert len(body["similar"]) == 2 and "singer0" not in [s["singer"] for s in body["similar"]]
    sims = [s["similarity"] for s in body["similar"]]
    assert sims == sorted(sims, reverse=True)
    check_error(server.get("/similar", params={"singer": "Nobody"}), 404, "DatasetError",
                "no singer 'Nobody' in the index; `singerid info` lists the singers")
    check_error(server.get("/similar"), 400, "ParameterError", "singer: Field required")
    check_error(server.get("/similar", params={"singer": "singer0", "top": 500}), 400, "ParameterError",
                "top must lie in [0, 100], got 500")
    song = ready_home.songs("test")[2]
    body = server.post("/similar", params={"top": 3}, files=upload(song)).json()
    assert body["song"] == song.name and len(body["similar"]) == 3
    assert body["similar"][0]["singer"] == ready_home.singer_of(song)


def test_writes_are_refused_when_no_token_is_configured(server, tmp_path):
    song = new_voice(tmp_path, 1)[0]
    for response in (server.post("/singers/X/songs", files=upload(song, "songs")), server.delete("/singers/singer0")):
        body = check_error(response, 403, "WritesDisabled")
        assert "--token" in body["error"] and "SINGERID_TOKEN" in body["error"]
    assert len(server.get("/singers").json()["singers"]) == 4


def test_unknown_routes_and_methods_answer_json(server):
    check_error(server.get("/nowhere"), 404, "NotFound", "Not Found")
    check_error(server.get("/identify"), 405, "MethodNotAllowed", "Method Not Allowed")


def test_docs_and_the_page_load_nothing_from_other_hosts(server):
    docs = server.get("/docs")
    assert docs.status_code == 200 and "swagger-ui" in docs.text
    page = server.get("/")
    assert page.status_code == 200 and "<title>singerid" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for html in (docs.text, page.text):
        assert EXTERNAL_URL.findall(html) == []
        assets = re.findall(r'(?:src|href)="(/[^"]+)"', html)
        assert assets
        for asset in assets:
            response = server.get(asset)
            assert response.status_code == 200, asset
            if asset.startswith("/static/"):
                assert EXTERNAL_URL.findall(response.text) == [], asset
    paths = server.get("/openapi.json").json()["paths"]
    assert {"/identify", "/singers", "/similar", "/map", "/health", "/singers/{name}/songs",
            "/singers/{name}"} <= set(paths)
    assert "multipart/form-data" in paths["/identify"]["post"]["requestBody"]["content"]


# --- writes ---------------------------------------------------------------------------------------

def test_enrol_and_remove_need_the_right_token(writable, tmp_path):
    song = new_voice(tmp_path, 1)[0]
    anonymous = {"Authorization": ""}
    response = writable.post("/singers/X/songs", files=upload(song, "songs"), headers=anonymous)
    check_error(response, 401, "Unauthorized", "this request changes the home: send the header "
                                               "'Authorization: Bearer <token>'")
    assert response.headers["www-authenticate"] == "Bearer"
    check_error(writable.delete("/singers/singer0", headers={"Authorization": "Bearer wrong"}), 403, "Forbidden",
                "wrong token")
    check_error(writable.delete("/singers/singer0", headers={"Authorization": "Basic " + TOKEN}), 401, "Unauthorized")
    assert len(writable.get("/singers").json()["singers"]) == 4


def test_enrol_then_identify_then_remove(writable, tmp_path):
    songs = new_voice(tmp_path, 3)
    files = [("songs", (p.name, p.read_bytes(), "audio/wav")) for p in songs[:2]]
    response = writable.post("/singers/Nina Simone/songs", files=files, data={"album": "Pastel Blues"})
    assert response.status_code == 201, response.text
    enrolled = response.json()
    assert 0.0 < enrolled.pop("unknown_threshold") <= 1.0  # recalibrated on the new index
    assert enrolled == {"action": "enrol", "singer": "Nina Simone", "n_songs": 2, "n_blocks": 8,
                        "n_skipped": 0, "failures": [], "index_vectors": 56}
    answer = writable.post("/identify", files=upload(songs[2]), params={"evidence": 1}).json()
    assert answer["singer"] == "Nina Simone" and answer["evidence"][0]["album"] == "Pastel Blues"
    assert "Nina Simone" in [p["singer"] for p in writable.get("/map").json()["singers"]]

    again = writable.post("/singers/Nina Simone/songs", files=upload(songs[2], "songs"))
    check_error(again, 409, "SingerExists", "singer 'Nina Simone' already exists; send the form field "
                "add_to_existing=true to add these songs to that singer, or enrol the new voice under another name")
    more = writable.post("/singers/Nina Simone/songs", files=upload(songs[2], "songs"),
                         data={"add_to_existing": "true"})
    assert more.status_code == 201 and more.json()["n_songs"] == 1
    same = writable.post("/singers/Nina Simone/songs", files=upload(songs[2], "songs"), data={"add_to_existing": "1"})
    assert same.status_code == 200 and same.json()["n_skipped"] == 1  # the same bytes again: nothing new

    removed = writable.delete("/singers/Nina Simone")
    assert removed.status_code == 200 and removed.json()["n_songs"] == 3 and removed.json()["index_vectors"] == 48
    assert "Nina Simone" not in [s["name"] for s in writable.get("/singers").json()["singers"]]
    check_error(writable.delete("/singers/Nina Simone"), 404, "DatasetError")
    assert writable.get("/health").json()["problems"] == []


def test_enrol_refuses_bad_files_and_bad_fields(writable, tmp_path):
    bad = tmp_path / "cover.wav"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    check_error(writable.post("/singers/X/songs", files=upload(bad, "songs")), 422, "AudioError",
                "cover.wav: not a readable audio file (unknown format or corrupt header)")
    check_error(writable.post("/singers/X/songs", data={"album": "A"}), 400, "ParameterError",
                "send at least one file in the form field 'songs'")
    song = new_voice(tmp_path, 1)[0]
    check_error(writable.post("/singers/X/songs", files=upload(song, "song")), 400, "ParameterError",
                "unknown form field(s) song; expected songs, album, add_to_existing")
    assert [s["name"] for s in writable.get("/singers").json()["singers"]] == [f"singer{i}" for i in range(4)]


def test_identify_runs_while_enrol_and_remove_write_with_no_error_and_no_lost_write(writable, ready_home, tmp_path):
    queries = ready_home.songs("test")
    enrolled = new_voice(tmp_path / "a", 2, voice=4)
    writes_done = threading.Event()
    answers: list[dict] = []
    errors: list[str] = []

    def ask(worker: int) -> None:
        with httpx.Client(base_url=str(writable.base_url), timeout=60) as client:
            for i in range(400):  # bounded; ends once the writes are done and a few more answers came
                if writes_done.is_set() and i >= 8:
                    break
                song = queries[(worker + i) % len(queries)]
                response = client.post("/identify", files=upload(song))
                if response.status_code != 200:
                    errors.append(f"{response.status_code} {response.text}")
                else:
                    answers.append(response.json() | {"expected": ready_home.singer_of(song), "at": time.monotonic()})

    readers = [threading.Thread(target=ask, args=(w,)) for w in range(3)]
    for t in readers:
        t.start()
    try:
        files = [("songs", (p.name, p.read_bytes(), "audio/wav")) for p in enrolled]
        writing = time.monotonic()
        enrol = writable.post("/singers/Voice Four/songs", files=files)
        removal = writable.delete("/singers/singer3")
        written = time.monotonic()
    finally:
        writes_done.set()
        for t in readers:
            t.join(timeout=120)
    assert enrol.status_code == 201, enrol.text
    assert removal.status_code == 200, removal.text
    assert errors == []
    assert len(answers) >= 24
    assert any(writing < a["at"] < written for a in answers)  # identifications overlapped the writes
    for a in answers:
        assert a["ok"] and 0 < a["vote_share"] <= 1 and a["n_blocks"] == 4 and a["evidence"]
        assert a["predicted"] in {"singer0", "singer1", "singer2", "singer3", "Voice Four"}
        if a["expected"] != "singer3":  # singer3's songs get another answer once singer3 is gone
            assert a["singer"] == a["expected"]
    singers = {s["name"]: s for s in writable.get("/singers").json()["singers"]}
    assert set(singers) == {"singer0", "singer1", "singer2", "Voice Four"}
    assert singers["Voice Four"]["n_songs"] == 2
    health = writable.get("/health").json()
    assert health["vectors"] == 48 + 8 - 12 and health["problems"] == []
    assert writable.post("/identify", files=upload(enrolled[1])).json()["singer"] == "Voice Four"


# --- the command ------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_serve_command_serves_the_home(ready_home):
    port = free_port()
    env = {**os.environ, "SINGERID_TOKEN": TOKEN, "SINGERID_NO_PROGRESS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "singerid", "serve", "--home", str(ready_home.home.root),
                             "--port", str(port), "--threads", "1", "--max-upload-mb", "2"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read()
                assert time.monotonic() < deadline, "serve did not start in 60 s"
                time.sleep(0.25)
        assert health.status_code == 200
        assert health.json()["writes"] == "enabled" and health.json()["limits"]["max_upload_mb"] == 2.0
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert f"at http://127.0.0.1:{port}/ (docs at /docs); enrol/remove need the token" in out


def test_serve_refuses_a_bad_device_before_listening(ready_home):
    from singerid.cli import main

    with pytest.raises(SystemExit) as info:
        main(["serve", "--home", str(ready_home.home.root), "--device", "tpu"])
    assert info.value.code == 2
