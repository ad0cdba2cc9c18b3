"""`singerid build-index`: the paper's reference matrix as a FAISS index answering with block ids.

Streams the stored block embeddings from the memory-mapped shards in block-id order, chunk by
chunk (``ShardRows``): the back end is fitted in two passes, IVF quantisers train on a sample,
vectors are added a chunk at a time, so RAM holds the index and one chunk, never all n x d
floats. Holds the writer lock throughout (no song is added or removed meanwhile, no other build
runs), deletes what killed writers left, writes the index atomically under a fresh name (with
its ``.ivfdata`` lists when they live on disk) and its threshold beside it, then points the
manifest at them: readers answer from the previous index until that moment, and its files are
kept for readers that opened it (``common.install_index``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from singerid.config import IndexConfig
from singerid.errors import ArtefactError
from singerid.index.choice import (IndexSpec, estimate_disk_bytes, estimate_index_bytes, make_spec, part_rows,
                                   spec_from_config)
from singerid.index.files import crash_point, ids_sha256
from singerid.embedder.checkpoint import SIDECAR_FILE, read_card
from singerid.index.backend import Backend, fit_backend
from singerid.index.home import BACKEND_SUFFIX, Home, IndexEntry
from singerid.index.ondisk import data_path_for
from singerid.index.rows import ShardRows
from singerid.index.shards import ShardSet, writer_lock
from singerid.index.store_records import IndexBuildRecord
from singerid.index.tuning import SearchTuning, tune_search
from singerid.index.vectors import VectorIndex
from singerid.pipeline.calibrate import calibrate, save_index_calibration
from singerid.pipeline.common import data_fields, install_index, open_store, require_embedded
from singerid.progress import Progress, ProgressArg

log = logging.getLogger(__name__)

MIN_LDA_SINGERS = 5  # ours: "auto" uses the LDA/WCCN back end from this many indexed singers on


@dataclass(frozen=True, slots=True)
class BuildSummary:
    index_type: str
    factory_key: str
    n_vectors: int
    dim: int
    path: Path
    size_bytes: int
    seconds: float
    gpu: bool
    unknown_threshold: float | None = None  # calibrated min mean similarity (None: too little data)
    unknown_eer: float | None = None
    backend: str = "none"
    on_disk: bool = False  # inverted lists in the .ivfdata file beside ``path``
    data_bytes: int = 0  # size of that file (0 when the lists are in the index file)
    tuning: SearchTuning | None = None  # how the search setting was chosen (approximate types)
    exact_instead: bool = False  # auto built flat: the tuned approximate index searched more slowly than exact

    def line(self) -> str:
        calibrated = ("" if self.unknown_threshold is None else
                      f"; unknown-singer threshold {self.unknown_threshold:.3f} (EER {self.unknown_eer:.1%})")
        projected = "" if self.backend == "none" else f" after {self.backend}"
        kind = f"{self.index_type} (on disk)" if self.on_disk else self.index_type
        lists = f" + {self.data_bytes / 2**20:,.1f} MiB of lists on disk" if self.on_disk else ""
        tuned = "" if self.tuning is None else f"\n{self.tuning.line()}"
        if self.exact_instead:
            tuned += "\nauto: that approximate index searched more slowly than exact search, so the exact one was built"
        return (f"built {kind} index ({self.factory_key}) of {self.n_vectors:,} vectors{projected}, "
                f"d={self.dim}, "
                f"{self.size_bytes / 2**20:,.1f} MiB{lists} in {self.seconds:.1f} s{' on the GPU' if self.gpu else ''}"
                f"{calibrated}{tuned}")


def build_index(home: Home, *, cfg: IndexConfig = IndexConfig(), db_url: str | None = None,
                splits: Sequence[str] | None = None, progress: ProgressArg = False) -> BuildSummary:
    """Build and save the index of all stored blocks (or of ``splits`` only).

    ``progress`` (a ``singerid.progress`` mode or the old bool): one line per stage (read, back
    end, plan, adding, calibration) unless "off". ``cfg.index_type`` "auto" chooses by size and
    ``cfg.memory_budget_bytes`` (singerid.index.choice.choose_index_key); on-disk lists are built
    in parts that fit that budget. Raises ArtefactError when nothing is embedded yet,
    ParameterError for an index that does not fit (or ``cfg.gpu`` without a GPU).
    """
    started = time.perf_counter()
    require_embedded(home, db_url)  # names the next step if nothing is
    home.create()
    with writer_lock(home.shards_dir), open_store(home, db_url) as store, \
            Progress("build-index", progress=progress) as stages:
        home.clean_leftovers()
        manifest = require_embedded(home, db_url)  # again under the lock: restores a lost manifest
        model_sha256, features = store.embedding_source()
        if model_sha256 != manifest.model.sha256:
            raise ArtefactError(f"the store holds vectors of model {str(model_sha256)[:12]}, the manifest records "
                                f"{manifest.model.sha256[:12]}; embed into a new home")
        locations = store.block_locations(splits=splits)
        if len(locations) == 0:
            which = f" of split(s) {', '.join(splits)}" if splits else ""
            raise ArtefactError(f"the store in {home.root} holds no blocks{which}; run `singerid embed-corpus` first")
        dim = manifest.model.embedding_dim
        labels = store.block_labels(splits=splits)
        if not np.array_equal(labels.ids, locations.ids):
            raise ArtefactError(f"the store in {home.root} changed while the index was being built; "
                                "run build-index again once the other command has finished")
        vectors = ShardRows(ShardSet(home.shards_dir, dim), locations.shards, locations.rows)  # lazy (n, d)
        stages.note(f"read {len(locations):,} vectors (d={dim}) of {len(np.unique(labels.singer_codes)):,} singers")
        backend_kind = _resolve_backend(home, manifest.model.kind, cfg.backend,
                                        n_singers=len(np.unique(labels.singer_codes)))
        backend, backend_file, backend_sha = _fit_backend(home, backend_kind, vectors, labels.singer_codes)
        crash_point("back end fitted")
        if backend is not None:
            vectors = vectors.mapped(backend.apply, backend.dim_out)  # (n, d_out) float32 unit rows, per chunk
            stages.note(f"fitted the {backend_kind} back end (d={vectors.shape[1]})")
        spec = spec_from_config(cfg, n_vectors=len(locations), dim=vectors.shape[1])
        stages.note(_plan(spec, len(locations), cfg.memory_budget_bytes))
        path, index = _fill(home, spec, cfg, vectors, locations.ids, progress)
        exact_instead = False
        tuning = _tune(index, cfg, vectors, locations.ids, labels.song_ids, labels.singer_codes, stages.note)
        if tuning is not None:
            spec = index.spec
            if tuning.reached:
                stages.note(tuning.line())
            else:  # short of the target: said even with -q
                log.warning("%s", tuning.line())
            flat = make_spec("flat", dim=spec.dim, n_vectors=len(locations))
            if (cfg.index_type == "auto" and tuning.slower_than_exact
                    and estimate_index_bytes(flat, len(locations)) <= cfg.memory_budget_bytes):
                stages.note(f"auto: exact search was faster than {spec.label} at the agreement target; "
                            "building the exact (flat) index instead")
                data_path_for(path).unlink(missing_ok=True)  # the on-disk lists of the index not kept, if any
                spec, exact_instead = flat, True
                path, index = _fill(home, spec, cfg, vectors, locations.ids, progress)
        crash_point("index vectors added, file not yet written")
        sha = index.save(path)
        ids_hash = ids_sha256(locations.ids)
        # the threshold lives in the index's similarity space: written beside it, before the manifest names both
        calibration = calibrate(vectors, labels.song_ids, labels.singer_codes, model_sha256=manifest.model.sha256,
                                backend_sha256=backend_sha)
        calibration_file, calibration_sha = save_index_calibration(home, path, calibration)
        stages.note("calibrated the unknown-singer threshold" if calibration else
                    "too few songs to calibrate the unknown-singer threshold")
        entry = IndexEntry(file=path.name, sha256=sha, size_bytes=path.stat().st_size, spec=spec,
                           n_vectors=len(index), model_sha256=manifest.model.sha256, feature_config=features,
                           ids_sha256=ids_hash, splits=tuple(splits) if splits else None, gpu=cfg.gpu,
                           front_end=manifest.model.front_end, backend=backend_kind, backend_file=backend_file,
                           backend_sha256=backend_sha, calibration_file=calibration_file,
                           calibration_sha256=calibration_sha, **data_fields(home, path, spec.on_disk))
        install_index(home, manifest, entry)
        params = spec.to_dict() | ({"search_tuning": tuning.to_dict(), "exact_instead": exact_instead}
                                   if tuning is not None else {})
        store.record_index(IndexBuildRecord(index_type=spec.index_type, params=params, n_vectors=len(index),
                                            dim=spec.dim, model_sha256=manifest.model.sha256, file_name=path.name,
                                            file_sha256=sha, ids_sha256=ids_hash))
        crash_point("build recorded in the store")
        stages.close(f"{spec.label} index ({spec.factory_key}) of {len(index):,} vectors"
                     f"{' on the GPU' if cfg.gpu else ''}")
    return BuildSummary(backend=backend_kind, index_type=spec.index_type, factory_key=spec.factory_key,
                        n_vectors=len(index), dim=spec.dim, path=path, size_bytes=entry.size_bytes,
                        seconds=time.perf_counter() - started, gpu=cfg.gpu,
                        unknown_threshold=calibration.min_similarity if calibration else None,
                        unknown_eer=calibration.equal_error_rate if calibration else None, on_disk=spec.on_disk,
                        data_bytes=data_path_for(path).stat().st_size if spec.on_disk else 0, tuning=tuning,
                        exact_instead=exact_instead)


def _fill(home: Home, spec: IndexSpec, cfg: IndexConfig, vectors: ShardRows, ids: np.ndarray,
          progress: ProgressArg) -> tuple[Path, VectorIndex]:
    """Build ``spec`` from the streamed vectors under a fresh index path: (path, index)."""
    path = home.new_index_path(spec.index_type)
    with Progress("build-index add", total=len(ids), unit="vector", progress=progress) as adding:
        index = VectorIndex.build(spec, vectors, ids, gpu=cfg.gpu, data_path=data_path_for(path) if spec.on_disk else None,
                                  part_rows=part_rows(spec, cfg.memory_budget_bytes), on_rows=adding.update)
    return path, index


def _tune(index: VectorIndex, cfg: IndexConfig, vectors: ShardRows, ids: np.ndarray, song_codes: np.ndarray,
          singer_codes: np.ndarray, note: Callable[[str], None]) -> SearchTuning | None:
    """Tune the search setting of an approximate index the user left open, and set it as the index's default.

    ``note`` gets a line per stage of the tuning (the exact yardstick, then each setting tried)."""
    kind = index.spec.index_type
    fixed = cfg.ef_search if kind == "hnsw" else cfg.nprobe
    if cfg.search_agreement is None or fixed is not None or index.spec.is_exact:
        return None
    tuning = tune_search(index, vectors, ids, song_codes, singer_codes, target=cfg.search_agreement, on_step=note)
    if tuning is None:
        log.info("too few songs to tune the search of the %s index; it keeps %s", kind, index.spec)
        return None
    index.set_search_params(**{tuning.knob: tuning.value})
    return tuning


def _plan(spec: IndexSpec, n_vectors: int, budget_bytes: int) -> str:
    """One line: what will be built and the memory it is estimated to take (before spending it)."""
    disk = estimate_disk_bytes(spec, n_vectors)
    return (f"building {spec.label} ({spec.factory_key}): about {estimate_index_bytes(spec, n_vectors) / 2**20:,.1f} "
            f"MiB of RAM (budget {budget_bytes / 2**20:,.0f} MiB)" + (f", {disk / 2**20:,.1f} MiB on disk" if disk else ""))


def _resolve_backend(home: Home, kind: str, requested: str, *, n_singers: int) -> str:
    """``requested``, or for "auto" the back end the model's training recipe recorded ("none" if none).

    "auto" keeps raw cosine below MIN_LDA_SINGERS indexed singers: LDA keeps n_singers - 1
    dimensions, and in 1-3 dimensions nearly every block ties with its neighbours.
    """
    if requested != "auto":
        return requested
    training = read_card(home.model_dir(kind)).training if (home.model_dir(kind) / SIDECAR_FILE).is_file() else {}
    chosen = str(training.get("backend") or "none")
    if chosen == "lda-wccn" and n_singers < MIN_LDA_SINGERS:
        log.warning("%d singers are too few for the lda-wccn back end (it keeps n_singers - 1 dimensions); "
                    "indexing raw embeddings (force it with --backend lda-wccn)", n_singers)
        return "none"
    return chosen


def _fit_backend(home: Home, kind: str, vectors: np.ndarray, singer_codes: np.ndarray
                 ) -> tuple[Backend | None, str | None, str | None]:
    """Fit the back end on the reference vectors and save it beside the index: (backend, file, sha256)."""
    if kind == "none":
        return None, None, None
    backend = fit_backend(vectors, singer_codes, kind=kind)
    path = home.index_dir / (home.new_index_path(kind).stem + BACKEND_SUFFIX)
    sha = backend.save(path)
    return backend, path.name, sha
