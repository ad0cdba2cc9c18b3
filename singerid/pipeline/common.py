"""What several commands need from a home: its embedder, store, shards and index, checked.

Only this package combines the embedder (torch) with the index parts (FAISS, SQLAlchemy).
"""

from __future__ import annotations

import dataclasses
import logging
from singerid.embedder.checkpoint import SIDECAR_FILE
from singerid.embedder.embed import Embedder
from singerid.errors import ArtefactError, ParameterError
from singerid.index.backend import Backend
from singerid.index.files import ids_sha256
from singerid.index.home import Home, IndexEntry, Manifest, ModelEntry
from singerid.index.store import MetadataStore
from singerid.index.vectors import VectorIndex

log = logging.getLogger(__name__)

DEFAULT_MODEL_KIND = "attcrnn"  # the KNN-Net embedder (paper's Attention-CRNN-KNN row)
MODEL_KINDS = ("crnn", "attcrnn")


def resolve_model_kind(home: Home, requested: str | None) -> str:
    """The model kind a home's vectors come from: the manifest's, else ``requested``, else attcrnn.

    Raises ParameterError if ``requested`` contradicts the manifest (one home = one embedder).
    """
    manifest = home.read_manifest(missing_ok=True)
    recorded = manifest.model.kind if manifest.model is not None else None
    if requested is not None and requested not in MODEL_KINDS:
        raise ParameterError(f"model must be one of {', '.join(MODEL_KINDS)}, got {requested!r}")
    if recorded is not None and requested is not None and requested != recorded:
        raise ParameterError(f"home {home.root} holds vectors of the {recorded} model, not {requested}; "
                             "use another --home for another model")
    return recorded or requested or DEFAULT_MODEL_KIND


def load_embedder(home: Home, kind: str, *, device: str = "cpu", compile: bool = False) -> Embedder:  # noqa: A002
    """Load HOME/models/<kind>; a missing model is an ArtefactError naming `singerid train`."""
    model_dir = home.model_dir(kind)
    if not (model_dir / SIDECAR_FILE).is_file():
        raise ArtefactError(f"no {kind} model in {model_dir}; train one with "
                            f"`singerid train DATA --model {kind} --home {home.root}`")
    return Embedder.load(model_dir, device=device, compile=compile)


def open_store(home: Home, db_url: str | None) -> MetadataStore:
    """The metadata store of the home (``--db`` URL, else HOME/meta.sqlite)."""
    if db_url is None:
        home.root.mkdir(parents=True, exist_ok=True)
    return MetadataStore(home.db_url(db_url))


def record_model(home: Home, manifest: Manifest, embedder: Embedder) -> Manifest:
    """Write the model and feature config into the manifest (no-op when already recorded)."""
    entry = ModelEntry(kind=embedder.model_config.kind, sha256=embedder.weights_sha256,
                       embedding_dim=embedder.embedding_dim, front_end=embedder.front_end_config.key)
    if manifest.model == entry and manifest.feature_config == embedder.feature_config:
        return manifest
    if manifest.model is not None and manifest.model.sha256 != entry.sha256:
        raise ArtefactError(f"home {home.root} holds vectors of model {manifest.model.sha256[:12]}, but "
                            f"{home.model_dir(entry.kind)} is model {entry.sha256[:12]}; embed into a new home")
    return home.write_manifest(dataclasses.replace(manifest, model=entry, feature_config=embedder.feature_config))


def require_index(home: Home, manifest: Manifest) -> IndexEntry:
    if manifest.model is None:
        raise ArtefactError(f"nothing is embedded in {home.root} yet; run `singerid embed-corpus DIR --home {home.root}`")
    if manifest.index is None:
        raise ArtefactError(f"no index in {home.root}; run `singerid build-index --home {home.root}`")
    return manifest.index


def save_index(home: Home, manifest: Manifest, index: VectorIndex) -> Manifest:
    """Write ``index`` to a fresh file, point the manifest at it, delete the old file.

    Used after enrol/remove changed an index in place: the entry keeps its spec and splits.
    """
    entry = require_index(home, manifest)
    path = home.new_index_path(entry.spec.index_type)
    sha = index.save(path)
    held = index.ids()
    new_entry = dataclasses.replace(entry, file=path.name, sha256=sha, size_bytes=path.stat().st_size,
                                    n_vectors=len(index), ids_sha256=ids_sha256(held))
    written = home.write_manifest(dataclasses.replace(manifest, index=new_entry))
    home.prune_index_files(written)
    log.info("index now holds %d vectors (%s)", len(index), path.name)
    return written


def load_backend(home: Home, entry: IndexEntry) -> Backend | None:
    """The index's fitted back end, checked against its SHA-256 in the manifest (None for "none")."""
    path = home.backend_path(entry)
    if entry.backend == "none":
        return None
    if path is None or not path.is_file():
        raise ArtefactError(f"the {entry.backend} back end of the index ({path}) is missing; "
                            f"run `singerid build-index --home {home.root}`")
    return Backend.load(path, sha256=entry.backend_sha256)
