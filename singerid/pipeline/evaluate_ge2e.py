"""``evaluate``'s ``ge2e-knn`` row: what a user gets from an off-the-shelf speaker encoder.

Resemblyzer's pretrained GE2E speaker encoder (``singerid.embedder.ge2e``, weights from the
``resemblyzer`` wheel) embeds every 1-s block of the songs as our voice embedder hears them
(``GE2E_INPUT``: the separated vocals), the training split's blocks go into an exact FAISS
inner-product index, and the test blocks vote exactly as the KNN rows do (K nearest
reference blocks -> block singer -> song vote). Nothing is trained. Block embeddings are
cached per song under ``OUT/cache/ge2e-<input>/``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from singerid.config import IndexConfig
from singerid.datasets import Dataset
from singerid.embedder.cache import FeatureCache
from singerid.errors import AudioError, DatasetError
from singerid.evaluation import K_VALUES, RunResult
from singerid.frontend import FrontEndConfig
from singerid.index.choice import spec_from_config
from singerid.index.vectors import VectorIndex
from singerid.pipeline.evaluate_config import FEATURES_DIR, GE2E_INPUT, EvaluateConfig
from singerid.pipeline.evaluate_methods import EvalBlocks, knn_run
from singerid.progress import ProgressArg, track
from singerid.records import Track

log = logging.getLogger(__name__)


def ge2e_run(seed: int, ds: Dataset, *, singers: tuple[str, ...], cache_dir: Path, cfg: EvaluateConfig,
             progress: ProgressArg = False) -> RunResult:
    """Embed train and test songs with GE2E, index the train blocks, vote for the test songs.

    Songs whose audio cannot be used are logged and left out. Raises DatasetError when no
    training or test block is left.
    """
    from singerid.embedder.ge2e import Ge2eEncoder

    front_end = FrontEndConfig(input=GE2E_INPUT)
    stems = FeatureCache.for_input(Path(cache_dir) / FEATURES_DIR, cfg.feature, front_end)
    folder = Path(cache_dir) / f"ge2e-{cfg.feature.fingerprint()}-{front_end.key.replace('@', '-')}"
    encoder = Ge2eEncoder.load(cfg.device)
    label = {name: i for i, name in enumerate(singers)}

    def embed(tracks: Sequence[Track], desc: str) -> tuple[list[Track], list[np.ndarray]]:
        kept, rows = [], []
        for t in track(tracks, desc, unit="song", progress=progress):
            try:
                rows.append(_song_embeddings(t, stems, folder, encoder, cfg))
            except AudioError as exc:
                log.warning("ge2e-knn: skipping %s", exc)
                continue
            kept.append(t)
        return kept, rows

    train, train_rows = embed(ds.select("train"), "ge2e train")
    test, test_rows = embed(ds.select("test"), "ge2e test")
    kept = [(t, r) for t, r in zip(test, test_rows) if len(r)]
    test, test_rows = [t for t, _ in kept], [r for _, r in kept]
    if not train_rows or not test_rows:
        raise DatasetError(f"ge2e-knn: no usable blocks ({len(train_rows)} train, {len(test_rows)} test songs)")
    reference = np.concatenate(train_rows)  # (n_ref, 256) unit rows
    reference_labels = np.concatenate([np.full(len(r), label[t.singer], dtype=np.int64)
                                       for t, r in zip(train, train_rows)])
    spec = spec_from_config(IndexConfig(), n_vectors=len(reference), dim=reference.shape[1])
    index = VectorIndex.build(spec, reference, np.arange(len(reference), dtype=np.int64))
    queries = np.concatenate(test_rows)
    sims, ids = index.search(queries, cfg.search_k)  # (n_test_blocks, K) each
    labels = np.where(ids >= 0, reference_labels[np.clip(ids, 0, None)], -1)
    n_blocks = np.array([len(r) for r in test_rows])
    blocks = EvalBlocks(tracks=tuple(test), song_label=np.array([label[t.singer] for t in test], dtype=np.int64),
                        block_song=np.repeat(np.arange(len(test)), n_blocks).astype(np.int64),
                        block_start=np.zeros(int(n_blocks.sum()), dtype=np.int64), features=(), skipped=())
    return knn_run("ge2e-knn", seed, labels, sims, index_singers=singers, singers=singers, test=blocks, k=cfg.k,
                   k_values=K_VALUES)


def _song_embeddings(track: Track, stems: FeatureCache, folder: Path, encoder: object,
                     cfg: EvaluateConfig) -> np.ndarray:
    """GE2E embeddings float32 (n_blocks, 256) of one song's blocks, cached by content hash."""
    entry = folder / stems.entry_path(track.path).name
    if entry.is_file():
        return np.load(entry, allow_pickle=False)
    wave = stems.waveform(track.path)  # float32 (n,) at 16 kHz: the separated voice
    block_samples = cfg.feature.block_frames * cfg.feature.hop_samples
    hop_samples = cfg.feature.block_hop_frames * cfg.feature.hop_samples
    emb, _ = encoder.embed_waveform(wave, sample_rate=cfg.feature.sample_rate,  # type: ignore[attr-defined]
                                    block_samples=block_samples, hop_samples=hop_samples)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = entry.with_name(f"{entry.stem}.{os.getpid()}.tmp.npy")
    np.save(tmp, np.ascontiguousarray(emb, dtype=np.float32))
    os.replace(tmp, entry)
    return emb
