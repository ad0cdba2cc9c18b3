"""Crash safety: build-index and enrol killed (SIGKILL) at their crash points, then rerun.

Each kill is deterministic: ``SINGERID_CRASH_AT=N`` makes the command SIGKILL itself at the N-th
moment between two durable steps (rows appended, checksums appended, song committed, every
file written / renamed, manifest swapped, old generation pruned...). After the rerun the home
must check clean (`info --check`, nothing pending, index = store, no temporary files) with 0
lost and 0 duplicated blocks, and queries running in a loop throughout must report 0 errors and
0 wrong answers. The default run kills at a handful of points; ``-m slow`` at every point
(>= 20 per command; build-index has fewer instrumented points, so kills after random delays
make up the rest). embed-corpus's kill test is in test_pipeline.py.
"""

from __future__ import annotations

import random

import pytest
from embed_corpus import write_song
from reliability import QueryLoop, kill_command

from singerid.pipeline.build_index import build_index
from singerid.pipeline.manage import enrol
from singerid.pipeline.query import QueryEngine

N_VOICE_SONGS = 4  # enrol: 4 songs x 3 points each + the index swap = 22 crash points


@pytest.fixture
def voice(tmp_path):
    return [write_song(tmp_path / "voice" / f"{i}.wav", singer=5, song_seed=9300 + i, seconds=5.0)
            for i in range(N_VOICE_SONGS)]


@pytest.fixture
def queries(ready_home):
    songs = ready_home.songs("test")
    with QueryEngine.open(ready_home.home) as engine:
        right = [s for s in songs if engine.identify(s).singer == ready_home.singer_of(s)]
    return right, {s: ready_home.singer_of(s) for s in right}


def kill_enrol(ready_home, tmp_path, voice, queries, points):
    with QueryLoop(ready_home.home, *queries) as loop:
        tally = kill_command(ready_home.home, tmp_path / "work", ["enrol", "Newcomer", *map(str, voice)],
                             lambda home: enrol(home, "Newcomer", voice), points, loop=loop)
    return tally, loop


def kill_build(ready_home, tmp_path, queries, points, delays_s=()):
    with QueryLoop(ready_home.home, *queries) as loop:
        tally = kill_command(ready_home.home, tmp_path / "work", ["build-index"], build_index, points,
                             loop=loop, fresh=False, delays_s=delays_s)
    return tally, loop


def assert_survived(tally, loop, n_kills):
    assert tally["kills"] == tally["survived"] == n_kills, tally["problems"][:3]
    assert (tally["lost"], tally["duplicated"]) == (0, 0)
    assert (loop.refused, loop.wrong) == (0, 0), loop.errors[:3]
    assert loop.answered > 0


def test_enrol_killed_at_a_few_points_heals_on_rerun(ready_home, tmp_path, voice, queries):
    tally, loop = kill_enrol(ready_home, tmp_path, voice, queries, (6, 13, 20))  # mid-songs, swap, prune
    assert_survived(tally, loop, 3)


def test_build_index_killed_at_a_few_points_heals_on_rerun(ready_home, tmp_path, queries):
    tally, loop = kill_build(ready_home, tmp_path, queries, (4, 11))  # new file written, manifest swapped
    assert_survived(tally, loop, 2)


@pytest.mark.slow
def test_enrol_killed_at_every_point(ready_home, tmp_path, voice, queries):
    tally, loop = kill_enrol(ready_home, tmp_path, voice, queries, range(1, 60))
    assert tally["points_in_command"] is not None and tally["points_in_command"] >= 20
    assert_survived(tally, loop, tally["points_in_command"])


@pytest.mark.slow
def test_build_index_killed_at_every_point_and_after_random_delays(ready_home, tmp_path, queries):
    rng = random.Random(0)
    delays = tuple(round(rng.uniform(0.5, 6.0), 2) for _ in range(10))
    tally, loop = kill_build(ready_home, tmp_path, queries, range(1, 60), delays)
    assert tally["points_in_command"] is not None
    assert tally["kills"] >= 20 or tally["points_in_command"] + len(delays) >= 20
    assert tally["survived"] == tally["kills"] and (tally["lost"], tally["duplicated"]) == (0, 0)
    assert (loop.refused, loop.wrong) == (0, 0), loop.errors[:3]
