"""Helpers shared by the reader and kill tests and scripts/bench_reliability.py.

``QueryLoop`` opens the home for queries again and again in a thread (as a fresh `singerid
query` would, reusing one loaded embedder) while a writer runs, and counts answers, refusals
and wrong answers. ``run_crashing`` runs a singerid command that SIGKILLs itself at its N-th
crash point (``SINGERID_CRASH_AT``, singerid.index.files.crash_point). ``home_facts`` reads
what the store, shards and index hold, for "0 lost, 0 duplicated" checks.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from singerid.errors import SingeridError
from singerid.index.home import Home


@dataclass
class QueryLoop:
    """Query ``songs`` in a loop against ``home`` (changeable: ``loop.home = other``) until stopped.

    expected: path -> the singer that must be named. Counts: answered, refused (any error), wrong.
    """

    home: Home
    songs: list[Path]
    expected: dict[Path, str]
    answered: int = 0
    refused: int = 0
    wrong: int = 0
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        from singerid.pipeline.common import load_embedder

        self.embedder = load_embedder(self.home, self.home.read_manifest().model.kind)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from singerid.pipeline.query import QueryEngine, QueryOptions

        i = 0
        while not self._stop.is_set():
            song = self.songs[i % len(self.songs)]
            i += 1
            try:
                with QueryEngine.open(self.home, embedder=self.embedder) as engine:
                    answer = engine.identify(song, QueryOptions(n_evidence=1, reject_unknown=True)).predicted
            except SingeridError as exc:
                self.refused += 1
                self.errors.append(str(exc))
                time.sleep(0.05)
                continue
            self.answered += 1
            if answer != self.expected[song]:
                self.wrong += 1
                self.errors.append(f"{song.name}: {answer}, expected {self.expected[song]}")

    def __enter__(self) -> QueryLoop:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def figures(self) -> dict:
        return {"answered": self.answered, "refused": self.refused, "wrong": self.wrong,
                "first_errors": self.errors[:3]}


def singerid_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "singerid", *args]


def run_crashing(cmd: list[str], crash_at: int | None, *, timeout_s: float = 300) -> int:
    """Run ``cmd`` (killing itself at crash point ``crash_at``; None: never); returns its exit status
    (-9 when it was killed). Raises AssertionError with its stderr for any other failure."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SINGERID_CRASH_AT": str(crash_at or "")}
    result = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                            timeout=timeout_s)
    assert result.returncode in (0, -signal.SIGKILL), result.stderr[-2000:]
    return result.returncode


def run_killed_after(cmd: list[str], delay_s: float, *, timeout_s: float = 300) -> int:
    """Run ``cmd`` and SIGKILL it after ``delay_s`` seconds (if still running); returns its exit status."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        proc.wait(timeout=delay_s)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
    return proc.wait(timeout=timeout_s)


def home_facts(home: Home) -> dict:
    """Songs, blocks, duplicated blocks and shard rows in the store; ids in the index; leftovers."""
    from singerid.index.vectors import VectorIndex

    with sqlite3.connect(home.db_path) as db:
        songs = db.execute("select count(*), count(distinct content_sha256) from songs").fetchone()
        blocks = db.execute("select count(*), count(distinct id), count(distinct shard || ':' || row) "
                            "from blocks").fetchone()
        ids = sorted(r[0] for r in db.execute("select id from blocks"))
    entry = home.read_manifest().index
    index_ids = sorted(VectorIndex.load(home.index_path(entry)).ids().tolist()) if entry else []
    leftovers = [p.name for d in (home.root, home.index_dir) for p in d.iterdir() if ".tmp-" in p.name]
    return {"songs": songs[0], "duplicated_songs": songs[0] - songs[1], "blocks": blocks[0],
            "duplicated_blocks": blocks[0] - min(blocks[1], blocks[2]), "index_equals_store": index_ids == ids,
            "leftovers": leftovers}


def copy_home(base: Home, dest: Path) -> Home:
    """Copy a home no one writes to (readers may be open: their SQLite -wal/-shm files come and go,
    and hold nothing uncheckpointed once the last writer closed)."""
    shutil.copytree(base.root, dest, ignore=shutil.ignore_patterns("*-wal", "*-shm"))
    return Home(dest)


def check_after_rerun(home: Home, expected: dict) -> dict:
    """What a killed-then-rerun command left, against ``expected`` (home_facts of a clean run):
    lost and duplicated blocks, whether it is consistent (info --check clean, nothing pending)."""
    from singerid.pipeline.manage import info

    facts = home_facts(home)
    checked = info(home, check=True)
    lost = max(0, expected["blocks"] - facts["blocks"]) + max(0, expected["songs"] - facts["songs"])
    duplicated = facts["duplicated_blocks"] + facts["duplicated_songs"] + max(0, facts["blocks"] - expected["blocks"])
    consistent = (not checked["problems"] and checked["pending_blocks"] == 0 and facts["index_equals_store"]
                  and not facts["leftovers"])
    return {"lost": lost, "duplicated": duplicated, "consistent": consistent,
            "problems": checked["problems"] + [f"leftover {name}" for name in facts["leftovers"]]}


def kill_command(base: Home, work: Path, args: list[str], rerun, points, *, loop: QueryLoop | None = None,
                 fresh: bool = True, delays_s: tuple[float, ...] = ()) -> dict:
    """Kill ``singerid <args> --home H`` at each crash point in ``points`` (then after each delay in
    ``delays_s``), rerun it with ``rerun(home)`` each time, and tally the outcome.

    fresh: each kill on a new copy of ``base`` (else all on one copy, one after another). Stops
    at the first point the command passes without being killed (its number of points + 1).
    The expected store is that of a clean, uninterrupted run. Returns counts for the report.
    """
    clean = copy_home(base, work / "clean")
    rerun(clean)
    expected = home_facts(clean)
    shared = copy_home(base, work / "shared") if not fresh else None
    tally = {"kills": 0, "survived": 0, "lost": 0, "duplicated": 0, "points_in_command": None, "problems": []}
    runs = [("point", n) for n in points] + [("delay", d) for d in delays_s]
    for i, (how, value) in enumerate(runs):
        if how == "point" and tally["points_in_command"] is not None:
            continue  # past the command's last crash point
        home = copy_home(base, work / f"run-{i}") if fresh else shared
        if loop is not None:
            loop.home = home
        cmd = singerid_cmd(*args, "--home", str(home.root))
        code = run_crashing(cmd, value) if how == "point" else run_killed_after(cmd, value)
        if code == 0 and how == "point":
            tally["points_in_command"] = value - 1
            continue
        tally["kills"] += code != 0
        rerun(home)
        outcome = check_after_rerun(home, expected)
        tally["survived"] += outcome["consistent"] and not outcome["lost"] and not outcome["duplicated"]
        tally["lost"] += outcome["lost"]
        tally["duplicated"] += outcome["duplicated"]
        tally["problems"] += [f"{how} {value}: {p}" for p in outcome["problems"]]
    return tally


def make_ready_home(root: Path):
    """A queryable home as the tests' ``ready_home`` fixture builds it (trained attcrnn, 4 singers x
    3 train songs embedded, flat index): (home, tracks). About 10 s."""
    from embed_corpus import make_tracks

    from singerid.config import FeatureConfig, ModelConfig, TrainConfig
    from singerid.embedder.train import train_embedder
    from singerid.pipeline.build_index import build_index
    from singerid.pipeline.embed_corpus import embed_tracks

    tracks = make_tracks(root / "corpus", singers=4, train_songs=3, val_songs=1, test_songs=2, seconds=5.0)
    home = Home(root / "home").create()
    train_embedder(tracks, feature_cfg=FeatureConfig(), model_cfg=ModelConfig(kind="attcrnn"),
                   train_cfg=TrainConfig(epochs=5, batch_size=8, lr=3e-3, patience=5, seed=0),
                   out_dir=home.model_dir("attcrnn"), cache_dir=home.root / "cache")
    embed_tracks(home, [t for t in tracks if t.split == "train"])
    build_index(home)
    return home, tracks


def right_answers(home: Home, tracks) -> tuple[list[Path], dict[Path, str]]:
    """The test songs the home answers correctly now, and their singers (what QueryLoop expects)."""
    from singerid.pipeline.query import QueryEngine

    singer = {t.path: t.singer for t in tracks}
    with QueryEngine.open(home) as engine:
        right = [t.path for t in tracks if t.split == "test" and engine.identify(t.path).singer == t.singer]
    return right, {p: singer[p] for p in right}
