"""embed-corpus --engine ray against a real Ray head on loopback (started with the venv's `ray start`).

Checked: the stored songs, blocks and vectors equal the local engine's; a bad file is recorded
once and the rest stored; a rerun adds nothing; an actor killed mid-run is restarted and its song
retried; a killed driver resumes with every block once; an error inside the pipeline stops it
with one line. The machine has 2 cores: the head gets 2 CPUs, corpora are tiny.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from embed_corpus import write_song

from singerid.cli import main
from singerid.distributed import RayConfig, embed_tracks_ray, plan_pool
from singerid.distributed.actors import SongEmbedder
from singerid.errors import ParameterError
from singerid.index.home import Home
from singerid.index.shards import ShardSet
from singerid.index.store import MetadataStore
from singerid.pipeline.build_index import build_index
from singerid.pipeline.embed_corpus import EmbedSummary, embed_tracks
from singerid.pipeline.manage import info

pytestmark = pytest.mark.usefixtures("one_torch_thread_module")

MARKER_ENV = "SINGERID_TEST_RAY_MARKERS"  # the head's workers inherit it: where the fault markers live
HEAD_START_S = 120  # a cold `ray start` takes ~10 s here; generous for a loaded 2-core machine
VECTOR_ATOL = 1e-6  # torch's CPU kernels differ in the last bit when OMP_NUM_THREADS is set, as Ray sets it


@dataclasses.dataclass(frozen=True)
class RayHead:
    address: str  # "127.0.0.1:<port>"
    markers: Path  # files that tell the test actors below when to misbehave


@pytest.fixture(scope="module")
def ray_root():
    """A private Ray temp dir and auth token, in this process's environment before Ray is imported here.

    Ray reads RAY_AUTH_MODE when it is imported; a process that imported it earlier is refreshed.
    """
    root = Path(tempfile.mkdtemp(prefix="rayt", dir="/tmp"))  # short: Ray's unix sockets live below it
    token = root / "auth_token"
    token.write_text(secrets.token_hex(32))
    env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token), "RAY_USAGE_STATS_ENABLED": "0"}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        if "ray" in sys.modules and sys.modules["ray"] is not None:
            from ray._raylet import Config

            Config.initialize("")
        pytest.importorskip("ray")
        yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def ray_head(ray_root: Path):
    """A Ray head on 127.0.0.1 with 2 CPUs and its own token, stopped (only it) at the end."""
    root = ray_root
    (root / "markers").mkdir()
    tests_dir = str(Path(__file__).parent)  # the workers unpickle this module's actor classes
    head_env = {**os.environ, MARKER_ENV: str(root / "markers"), "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",
                "PYTHONPATH": os.pathsep.join(filter(None, [tests_dir, os.environ.get("PYTHONPATH")]))}
    port = _free_port()
    cmd = [str(Path(sys.executable).parent / "ray"), "start", "--head", "--block", "--node-ip-address", "127.0.0.1",
           "--port", str(port), "--num-cpus", "2", "--disable-usage-stats", "--include-dashboard=false",
           "--temp-dir", str(root / "ray")]
    log = open(root / "head.log", "wb")  # noqa: SIM115 - closed below
    head = subprocess.Popen(["nice", "-n", "10", *cmd], env=head_env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for_head(head, root / "head.log")
        yield RayHead(f"127.0.0.1:{port}", root / "markers")
    finally:
        head.send_signal(signal.SIGTERM)  # `ray start --block` stops the processes it started, nobody else's
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()
            head.wait()
        log.close()


class DiesOnce(SongEmbedder):
    """Kills its own process (SIGKILL) at the first song after the marker file ``die-once`` appears."""

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        marker = Path(os.environ[MARKER_ENV]) / "die-once"
        with contextlib.suppress(FileNotFoundError):
            marker.unlink()  # only the actor that removes it dies: the other one raced and lost
            os.kill(os.getpid(), signal.SIGKILL)
        return super().__call__(batch)


class FailsOn(SongEmbedder):
    """Raises ParameterError for a song named ``boom.wav`` (a bug, not bad audio: it must stop the run)."""

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if any(Path(str(p)).name == "boom.wav" for p in batch["path"]):
            raise ParameterError("boom.wav: a bug in the pipeline")
        return super().__call__(batch)


def test_ray_engine_stores_what_the_local_engine_stores_records_a_bad_file_and_reruns_idle(ready_home, ray_head,
                                                                                         tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"\x00" * 5000)  # passes the driver's checks, fails to decode on the actor
    twin = tmp_path / "twin.wav"
    shutil.copy(ready_home.tracks[0].path, twin)  # same content as song 0: stored once by either engine
    tracks = [*ready_home.tracks, dataclasses.replace(ready_home.tracks[1], path=bad, song_id="x/bad"),
              dataclasses.replace(ready_home.tracks[0], path=twin, song_id="x/twin"),
              dataclasses.replace(ready_home.tracks[2], path=tmp_path / "missing.wav", song_id="x/missing")]
    local, remote = _empty_home(ready_home, tmp_path / "local"), _empty_home(ready_home, tmp_path / "ray")

    by_local = embed_tracks(local, tracks)
    by_ray = embed_tracks_ray(remote, tracks, cluster=RayConfig(address=ray_head.address))

    n = len(ready_home.tracks)
    assert (by_ray.n_songs, by_ray.n_added, by_ray.n_skipped, by_ray.n_failed) == (n + 3, n, 1, 2)
    _assert_same_summary(by_local, by_ray)
    failures = dict(by_ray.failures)
    assert failures[str(bad)].startswith(f"{bad}: ") and "readable" in failures[str(bad)]  # decoded on an actor
    assert failures[str(tmp_path / "missing.wav")] == f"{tmp_path / 'missing.wav'}: no such file"  # the driver's
    _assert_same_songs(_stored(local), _stored(remote))
    _assert_exactly_once(remote)
    assert info(remote)["failures"] == 2

    again_local = embed_tracks(local, tracks)
    again = embed_tracks_ray(remote, tracks, cluster=RayConfig(address=ray_head.address))
    assert (again.n_added, again.n_skipped, again.n_failed, again.n_failed_before, again.n_blocks) == (0, n + 1, 1,
                                                                                                       1, 0)
    _assert_same_summary(again_local, again)  # the unchanged bad file is not tried again; the missing one is
    _assert_exactly_once(remote)
    build_index(remote)
    assert info(remote, check=True)["problems"] == []


@pytest.mark.slow
def test_a_vocals_model_separates_on_the_actors_as_the_local_engine_does(ready_home, ray_head, tmp_path):
    from singerid.embedder.checkpoint import SIDECAR_FILE
    from singerid.frontend import FrontEndConfig

    local, remote = _empty_home(ready_home, tmp_path / "local"), _empty_home(ready_home, tmp_path / "ray")
    for home in (local, remote):  # the same weights, told to hear the separated voice
        sidecar = home.model_dir("attcrnn") / SIDECAR_FILE
        card = json.loads(sidecar.read_text())
        card["front_end"] = FrontEndConfig(input="vocals").to_dict()
        sidecar.write_text(json.dumps(card))
    tracks = [t for t in ready_home.tracks if t.split == "val"]
    embed_tracks(local, tracks)
    embed_tracks_ray(remote, tracks, cluster=RayConfig(address=ray_head.address))
    assert remote.read_manifest().model.front_end.startswith("vocals@")
    _assert_same_songs(_stored(local), _stored(remote))


@pytest.mark.slow
def test_an_actor_killed_mid_run_is_restarted_and_its_song_retried(ready_home, ray_head, tmp_path):
    home = _empty_home(ready_home, tmp_path / "h")
    tracks = [t for t in ready_home.tracks if t.split == "train"]
    (ray_head.markers / "die-once").touch()
    summary = embed_tracks_ray(home, tracks, cluster=RayConfig(address=ray_head.address), actor_class=DiesOnce)
    assert not (ray_head.markers / "die-once").exists(), "an actor should have killed itself"
    assert (summary.n_added, summary.n_failed) == (len(tracks), 0)
    _assert_exactly_once(home)
    assert _stored(home).keys() == {str(Path(t.path).absolute()) for t in tracks}


@pytest.mark.slow
def test_an_error_in_the_pipeline_stops_it_in_one_line_and_keeps_what_was_stored(ready_home, ray_head, tmp_path):
    home = _empty_home(ready_home, tmp_path / "h")
    boom = tmp_path / "boom.wav"
    shutil.copy(ready_home.tracks[0].path, boom)
    tracks = [dataclasses.replace(ready_home.tracks[0], path=boom, song_id="x/boom"), *ready_home.tracks[1:4]]
    with pytest.raises(ParameterError) as caught:
        embed_tracks_ray(home, tracks, cluster=RayConfig(address=ray_head.address, actors=1), actor_class=FailsOn)
    message = str(caught.value)
    assert message.startswith("boom.wav: a bug in the pipeline (") and message.endswith(
        " songs were stored before it stopped; a rerun resumes)") and "\n" not in message
    _assert_exactly_once(home)


@pytest.mark.slow
def test_a_killed_driver_resumes_with_every_block_once(ready_home, ray_head, tmp_path):
    """SIGKILL the CLI (the driver) mid-run, run it again: every song once, store = shards = index."""
    root = tmp_path / "many"
    for s in range(4):
        for i in range(6):
            write_song(root / f"singer{s}" / f"song{i}.wav", singer=s, song_seed=7000 + 10 * s + i, seconds=5.0)
    home = _empty_home(ready_home, tmp_path / "h")
    cmd = [sys.executable, "-m", "singerid", "embed-corpus", str(root), "--home", str(home.root), "--dataset", "folder",
           "--split", "all", "--engine", "ray", "--address", ray_head.address]
    driver = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and _stored_songs(home) < 3 and driver.poll() is None:
            time.sleep(0.05)
        os.kill(driver.pid, signal.SIGKILL)
    finally:
        driver.wait()
    killed_at = _stored_songs(home)
    assert 3 <= killed_at < 24, f"the kill should land mid-run (stored {killed_at} of 24 songs)"
    result = subprocess.run(cmd + ["--json"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["added"], report["skipped"], report["failed"]) == (24 - killed_at, killed_at, 0)
    assert _stored_songs(home) == 24
    _assert_exactly_once(home)
    build_index(home)
    assert info(home, check=True)["problems"] == []


def test_without_ray_the_engine_says_how_to_install_it(ready_home, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    home = _empty_home(ready_home, tmp_path / "h")
    with pytest.raises(ParameterError, match=r"^--engine ray needs Ray, which is not installed: "
                                             r"pip install 'singerid\[ray\]'$"):
        embed_tracks_ray(home, ready_home.tracks[:1])
    corpus = ready_home.songs("train")[0].parent.parent
    code, _, err = _run_cli(capsys, "embed-corpus", str(corpus), "--home", str(home.root), "--engine", "ray")
    assert (code, err) == (2, "Error: --engine ray needs Ray, which is not installed: pip install 'singerid[ray]'\n")


@pytest.mark.parametrize(("args", "message"), [
    (["--address", "auto"], "--address apply to --engine ray only; add --engine ray"),
    (["--actors", "2", "--ray-cpus", "2"], "--ray-cpus, --actors apply to --engine ray only; add --engine ray"),
    (["--engine", "ray", "--device", "cuda"], "--device cuda applies to --engine local; with --engine ray the "
                                              "actors use GPUs when the cluster has them (--actor-gpus)"),
    (["--engine", "ray", "--address", "auto", "--ray-cpus", "2"],
     "--ray-cpus sizes a local Ray instance; a cluster given by --address has its own CPUs"),
])
def test_ray_options_are_checked_before_any_work(tmp_path, capsys, args, message):
    code, _, err = _run_cli(capsys, "embed-corpus", str(tmp_path), "--home", str(tmp_path / "h"), *args)
    assert (code, err) == (2, f"Error: {message}\n")
    assert not (tmp_path / "h").exists()


def test_plan_pool_sizes_the_pool_from_the_cluster():
    cpu = plan_pool(RayConfig(), {"CPU": 8.0}, n_songs=100)
    assert (cpu.actors, cpu.cpus_per_actor, cpu.gpus_per_actor, cpu.device) == (8, 1, 0.0, "cpu")
    assert plan_pool(RayConfig(cpus_per_actor=3), {"CPU": 8.0}, n_songs=100).actors == 2
    assert plan_pool(RayConfig(), {"CPU": 8.0}, n_songs=3).actors == 3  # never more actors than songs
    assert plan_pool(RayConfig(actors=20), {"CPU": 8.0}, n_songs=100).actors == 8  # capped by what fits
    gpu = plan_pool(RayConfig(), {"CPU": 16.0, "GPU": 2.0}, n_songs=100)
    assert (gpu.actors, gpu.gpus_per_actor, gpu.device) == (2, 1.0, "cuda")
    assert plan_pool(RayConfig(gpus_per_actor=0.5), {"CPU": 16.0, "GPU": 2.0}, n_songs=100).actors == 4
    assert plan_pool(RayConfig(gpus_per_actor=0), {"CPU": 4.0, "GPU": 2.0}, n_songs=100).device == "cpu"
    with pytest.raises(ParameterError, match=r"^each actor asks for 1 GPU but the Ray cluster has 0 GPUs; use "):
        plan_pool(RayConfig(gpus_per_actor=1), {"CPU": 4.0}, n_songs=1)
    with pytest.raises(ParameterError, match=r"^an actor needs 4 CPUs but the Ray cluster has 2$"):
        plan_pool(RayConfig(cpus_per_actor=4), {"CPU": 2.0}, n_songs=1)
    with pytest.raises(ParameterError, match=r"^actors must be >= 1, got 0$"):
        RayConfig(actors=0)


def test_an_unreachable_cluster_is_a_one_line_error_at_once(ready_home, ray_root, tmp_path):
    home = _empty_home(ready_home, tmp_path / "h")
    started = time.monotonic()
    with pytest.raises(ParameterError, match=r"^cannot reach the Ray cluster at '127\.0\.0\.1:1': Connection "
                                             r"refused; is `ray start --head` running there, and the port open\?$"):
        embed_tracks_ray(home, ready_home.tracks[:1], cluster=RayConfig(address="127.0.0.1:1"))
    assert time.monotonic() - started < 30  # Ray itself would retry for many minutes


# helpers


def _empty_home(ready_home, root: Path) -> Home:
    """A home holding ready_home's trained model and nothing else."""
    home = Home(root).create()
    shutil.copytree(ready_home.home.model_dir("attcrnn"), home.model_dir("attcrnn"))
    return home


def _stored(home: Home) -> dict[str, dict]:
    """Each stored song by path: its row (ids left out), block offsets and vectors in block order."""
    with MetadataStore(home.db_url(None)) as store:
        songs = {s.song_id: s for s in store.songs()}
        where = store.block_locations()
        blocks = store.lookup_blocks(where.ids)
    dim = home.read_manifest().model.embedding_dim
    vectors = ShardSet(home.shards_dir, dim).gather(where.shards, where.rows)
    out: dict[str, dict] = {}
    for i, block_id in enumerate(where.ids):
        block = blocks[int(block_id)]
        song = songs[block.song_id]
        row = out.setdefault(song.path, {"song": dataclasses.replace(song, song_id=0), "offsets": [], "vectors": []})
        row["offsets"].append(block.offset_seconds)
        row["vectors"].append(vectors[i])
    return out


def _assert_same_summary(local: EmbedSummary, remote: EmbedSummary) -> None:
    for field in ("n_songs", "n_added", "n_skipped", "n_failed", "n_failed_before", "n_blocks", "audio_seconds",
                  "repaired_rows"):
        assert getattr(remote, field) == getattr(local, field), field
    assert sorted(remote.failures) == sorted(local.failures)
    assert sorted(remote.failed_before) == sorted(local.failed_before)


def _assert_same_songs(local: dict[str, dict], remote: dict[str, dict]) -> None:
    assert local.keys() == remote.keys()
    for path in local:
        assert remote[path]["song"] == local[path]["song"], path
        assert remote[path]["offsets"] == local[path]["offsets"], path
        np.testing.assert_allclose(np.stack(remote[path]["vectors"]), np.stack(local[path]["vectors"]), rtol=0,
                                   atol=VECTOR_ATOL, err_msg=path)


def _assert_exactly_once(home: Home) -> None:
    """Every song once, every block once, and the shards hold exactly the rows the store points at."""
    with sqlite3.connect(home.db_path) as db:
        n_songs, n_distinct = db.execute("select count(*), count(distinct content_sha256) from songs").fetchone()
        n_blocks, n_ids = db.execute("select count(*), count(distinct id) from blocks").fetchone()
        n_places = db.execute("select count(*) from (select shard, row from blocks group by shard, row)").fetchone()[0]
        per_song = db.execute("select sum(n_blocks) from songs").fetchone()[0] or 0
    assert n_songs == n_distinct and n_blocks == n_ids == n_places == per_song
    shards = ShardSet(home.shards_dir, home.read_manifest().model.embedding_dim)
    assert sum(shards.rows_on_disk(s) for s in shards.shard_ids()) == n_blocks


def _run_cli(capsys, *args: str) -> tuple[int, str, str]:
    """Run ``singerid ARGS`` in-process through the real entry point (its error boundary)."""
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def _stored_songs(home: Home) -> int:
    if not home.db_path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{home.db_path}?mode=ro", uri=True, timeout=0.1) as db:
            return db.execute("select count(*) from songs").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_head(head: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + HEAD_START_S
    while time.monotonic() < deadline:
        if b"Ray runtime started" in log.read_bytes():
            return
        if head.poll() is not None:
            break
        time.sleep(0.2)
    pytest.fail(f"`ray start --head` did not come up:\n{log.read_text(errors='replace')[-3000:]}")
