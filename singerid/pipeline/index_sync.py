"""Bring the home's index up to date with its store after a write (embed-corpus, enrol, remove).

The index is the readers' snapshot: writers add songs to the store (and shards) first, then one
``sync_index`` call adds the new blocks to a copy of the index (FAISS ``add``: every index type
takes new vectors without retraining; HNSW is rebuilt after removals), recalibrates the
unknown-singer threshold and installs both under new names before the manifest points at them
(``common.save_index``). Syncing to the store (not just this run's songs) also heals a write that
was killed between storing songs and swapping the index. The caller holds the writer lock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from singerid.errors import ArtefactError
from singerid.index.consistency import find_problems, raise_if_inconsistent
from singerid.index.home import Home, Manifest
from singerid.index.rows import ShardRows
from singerid.index.shards import ShardSet
from singerid.index.store import MetadataStore
from singerid.index.vectors import VectorIndex
from singerid.pipeline.calibrate import calibrate
from singerid.pipeline.common import load_backend, save_index

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SyncSummary:
    """What a sync changed."""

    n_vectors: int  # in the index afterwards
    n_added: int
    n_removed: int
    unknown_threshold: float | None  # recalibrated (None: too few singers or songs)
    changed: bool  # a new index generation was installed


def sync_index(home: Home, store: MetadataStore, *, manifest: Manifest | None = None,
               drop_ids: np.ndarray | None = None) -> SyncSummary | None:
    """Make the index hold exactly the store's blocks of its splits (less ``drop_ids``: blocks about
    to be deleted from the store), recalibrate and install the result. None when the home has no
    index yet. Raises ArtefactError when the index file is damaged (build-index repairs it).
    """
    manifest = manifest or home.read_manifest(missing_ok=True)
    entry = manifest.index
    if entry is None or manifest.model is None:
        return None
    raise_if_inconsistent(find_problems(home, manifest, verify_checksum=True))  # never extend a damaged index
    backend = load_backend(home, entry)
    locations = store.block_locations(splits=entry.splits)
    labels = store.block_labels(splits=entry.splits)
    if not np.array_equal(labels.ids, locations.ids):
        raise ArtefactError(f"the store in {home.root} changed during this command; run it again once the "
                            "other command has finished")
    keep = np.ones(len(locations), dtype=bool) if drop_ids is None else ~np.isin(locations.ids, drop_ids)
    wanted = locations.ids[keep]
    index = VectorIndex.load(home.index_path(entry))
    held = index.ids()
    gone = held[~np.isin(held, wanted)]
    new = np.flatnonzero(keep & ~np.isin(locations.ids, held))
    calibration_ok = entry.calibration_file is None or home.calibration_path(entry).is_file()
    if gone.size == 0 and new.size == 0 and calibration_ok:
        return SyncSummary(len(index), 0, 0, None, changed=False)
    vectors = ShardRows(ShardSet(home.shards_dir, manifest.model.embedding_dim), locations.shards, locations.rows)
    if backend is not None:  # the projection fitted at build-index, as queries use it
        vectors = vectors.mapped(backend.apply, backend.dim_out)  # lazy (n, d_out): read per chunk
    if gone.size:
        index.remove_ids(gone)
    if new.size:
        index.add(vectors[new], locations.ids[new])
    rows = np.flatnonzero(keep)
    subset = vectors if drop_ids is None else _Subset(vectors, rows)
    calibration = calibrate(subset, labels.song_ids[rows], labels.singer_codes[rows],
                            model_sha256=manifest.model.sha256, backend_sha256=entry.backend_sha256)
    save_index(home, manifest, index, calibration=calibration)
    log.info("index brought up to date: %d added, %d removed, %d vectors", new.size, gone.size, len(index))
    return SyncSummary(len(index), int(new.size), int(gone.size),
                       calibration.min_similarity if calibration is not None else None, changed=True)


class _Subset:
    """Rows ``rows`` of a lazy (n, d) row source, as calibrate reads them (slices and index arrays)."""

    def __init__(self, source, rows: np.ndarray) -> None:  # noqa: ANN001 (ShardRows or an array)
        self.source, self.rows = source, rows
        self.shape = (len(rows), source.shape[1])

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key):  # noqa: ANN001, ANN204
        return self.source[self.rows[key]]
