"""Hand-made evaluation results for the report tests: real records, generated predictions."""

from __future__ import annotations

import numpy as np

from singerid.evaluation import (K_VALUES, DatasetResult, EvaluationResults, KAccuracy, Predictions,
                                 RunResult, SongDetails, SplitCount, StageTiming, TimbreSample, vote_predictions)

ARTIST20 = ("aerosmith", "beatles", "creedence_clearwater_revival", "cure", "dave_matthews_band",
            "depeche_mode", "fleetwood_mac", "garth_brooks", "green_day", "led_zeppelin", "madonna",
            "metallica", "prince", "queen", "radiohead", "roxette", "steely_dan", "suzanne_vega",
            "tori_amos", "u2")
PAPER_AND_BASELINES = ("crnn", "attcrnn", "attcrnn-knn", "crnn-knn", "mfcc-logreg")
ABLATIONS_RUN = ("voice-no-separation-knn", "voice-no-remix-knn", "voice-no-backend-knn")  # a few of six
VOICE_METHODS = ("voice", "voice-knn", "ge2e-knn", "voice-knn-clean", *ABLATIONS_RUN)
# block-level hit rate of each method (song level follows from the vote)
HIT_RATE = {"crnn": 0.45, "attcrnn": 0.5, "attcrnn-knn": 0.55, "crnn-knn": 0.5, "mfcc-logreg": 0.4,
            "voice": 0.55, "voice-knn": 0.6, "ge2e-knn": 0.5, "voice-knn-clean": 0.75,
            "voice-no-separation-knn": 0.4, "voice-no-remix-knn": 0.55, "voice-no-backend-knn": 0.5}


def noisy(truth: np.ndarray, singers: tuple[str, ...], hit: float, rng: np.random.Generator) -> np.ndarray:
    """``truth`` with each label kept with probability ``hit``, else a random singer."""
    wrong = rng.choice(np.array(singers, dtype=object), size=truth.size)
    return np.where(rng.random(truth.size) < hit, truth, wrong).astype(object)


def dataset(key: str, singers: tuple[str, ...], seeds: tuple[int, ...], *, songs_per_singer: int = 3,
            blocks_per_song: int = 8, methods=PAPER_AND_BASELINES, error: str | None = None,
            split_rule: str = "album split 4/1/1 per artist (paper §3.1)") -> DatasetResult:
    runs, counts, timings = [], [], []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        song_truth = np.repeat(np.array(singers, dtype=object), songs_per_singer)
        song_ids = [f"{s}/song{i}" for s in singers for i in range(songs_per_singer)]
        block_song = np.repeat(np.array(song_ids, dtype=object), blocks_per_song)
        block_truth = np.repeat(song_truth, blocks_per_song)
        for method in methods:
            hit = HIT_RATE[method]
            paths = tuple(f"/data/{key}/{song_id}.mp3" for song_id in song_ids)
            albums = tuple(f"album{i % 2}" for i in range(len(song_ids)))
            if method == "mfcc-logreg":
                songs = SongDetails(tuple(song_ids), paths, albums, probability=rng.uniform(0.2, 0.9, len(song_ids)))
                runs.append(RunResult(method, seed, song=Predictions(song_truth, noisy(song_truth, singers, hit + 0.2, rng)),
                                      block=None, songs=songs))
                continue
            blocks = Predictions(block_truth, noisy(block_truth, singers, hit, rng))
            song = vote_predictions(block_song.tolist(), blocks, rng.random(block_truth.size))
            votes = (blocks.y_pred.reshape(len(song_ids), blocks_per_song) == song.y_pred[:, None]).mean(axis=1)
            knn = method.endswith("-knn")
            songs = SongDetails(tuple(song_ids), paths, albums, n_blocks=np.full(len(song_ids), blocks_per_song),
                                vote_share=votes, similarity=rng.uniform(0.5, 0.9, len(song_ids)) if knn else None,
                                probability=None if knn else rng.uniform(0.2, 0.9, len(song_ids)))
            curve = ()
            if method.endswith("-knn"):
                lift = 0.1 if method == "attcrnn-knn" else 0.0
                curve = tuple(KAccuracy(k, song_accuracy=min(1.0, 0.4 + lift + 0.05 * i + 0.01 * (seed % 4)),
                                        block_accuracy=0.3 + lift + 0.02 * i)
                              for i, k in enumerate(K_VALUES))
            runs.append(RunResult(method, seed, song=song, block=blocks, accuracy_vs_k=curve, songs=songs))
        n = len(song_ids)
        counts += [SplitCount(seed, "train", 4 * n, 4 * n * 200), SplitCount(seed, "val", n, n * 200),
                   SplitCount(seed, "test", n, n * blocks_per_song)]
        timings += [StageTiming("train attcrnn", 12.5 + seed, seed), StageTiming("search", 0.75, seed)]
    timings.append(StageTiming("scan", 1.25))
    return DatasetResult(key=key, split_rule=split_rule, seeds=seeds, singers=singers, runs=tuple(runs),
                         counts=tuple(counts), timings=tuple(timings), error=error)


def multi_dataset_results(*, voice: bool = True) -> EvaluationResults:
    """artist20 (20 singers, 3 seeds, the paper's methods and baselines), singer32 failed,
    synthetic (6 singers, 2 seeds; with ``voice`` also our voice methods, GE2E and 3 ablations)."""
    return EvaluationResults(
        datasets=(
            dataset("artist20", ARTIST20, (0, 21, 42)),
            DatasetResult(key="singer32", split_rule="8:1:1 per singer (paper §3.1)", seeds=(0, 21, 42),
                          error="singer32: /data/singer32 matches no known layout"),
            dataset("synthetic", tuple(f"singer{i:02d}" for i in range(6)), (0, 1),
                    methods=PAPER_AND_BASELINES + (VOICE_METHODS if voice else ()),
                    split_rule="album split 4/1/1 per singer (synthetic corpus)"),
        ),
        config={"feature": {"sample_rate": 16000, "n_mels": 128}, "k": 11},
        generated_at="2026-01-01T00:00:00+00:00",
    )


def exact_run(method: str, seed: int, singers: tuple[str, ...], n_songs: int, n_right: int) -> RunResult:
    """A run whose first ``n_right`` of ``n_songs`` one-block songs are right, the rest wrong:
    song and block accuracy are exactly ``n_right / n_songs``."""
    truth = np.array([singers[i % len(singers)] for i in range(n_songs)], dtype=object)
    wrong = np.array([singers[(i + 1) % len(singers)] for i in range(n_songs)], dtype=object)
    pred = Predictions(truth, np.where(np.arange(n_songs) < n_right, truth, wrong))
    return RunResult(method, seed, song=pred, block=pred)


def ablation_dataset(right: dict[str, dict[int, int]], *, n_songs: int = 20, key: str = "synthetic",
                     split_rule: str = "album split 4/1/1 per singer (synthetic corpus)") -> DatasetResult:
    """A dataset with exact accuracies: ``right[method][seed]`` = songs right out of ``n_songs``."""
    singers = ("s0", "s1", "s2", "s3")
    runs = [exact_run(method, seed, singers, n_songs, n) for method, by_seed in right.items()
            for seed, n in by_seed.items()]
    return DatasetResult(key=key, split_rule=split_rule, seeds=(0, 1), singers=singers, runs=tuple(runs))


def timbre_sample(dataset_key: str, singers: tuple[str, ...], *, per_singer: int = 30, d: int = 32, noise: float = 0.35,
                  seed: int = 0) -> TimbreSample:
    """Clustered unit vectors: one Gaussian blob per singer around a random direction."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((len(singers), d))
    emb = np.repeat(centres, per_singer, axis=0) + noise * rng.standard_normal((len(singers) * per_singer, d))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return TimbreSample(dataset=dataset_key, embeddings=emb.astype(np.float32),
                        singers=np.repeat(np.array(singers, dtype=object), per_singer), seed=seed)
