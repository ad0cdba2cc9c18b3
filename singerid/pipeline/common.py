"""What several commands need from a home: its embedder, store, shards and index, checked.

Only this package combines the embedder (torch) with the index parts (FAISS, SQLAlchemy).
"""

from __future__ import annotations

import dataclasses
import logging

from singerid.embedder.checkpoint import SIDECAR_FILE, read_card
from singerid.embedder.embed import Embedder
from singerid.errors import ArtefactError, ParameterError
from singerid.index.backend import Backend
from singerid.index.consistency import model_missing_problem, model_replaced_problem
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
    """Load HOME/models/<kind>.

    Raises ArtefactError naming the repair that works: for a home whose vectors depend on the
    model, restore it or start a new home (a retrained model cannot read them); otherwise train.
    """
    model_dir = home.model_dir(kind)
    vectors_sha = _vectors_model(home, kind)
    if not (model_dir / SIDECAR_FILE).is_file():
        if vectors_sha is not None:
            raise ArtefactError(model_missing_problem(home, kind, vectors_sha, f"no {SIDECAR_FILE}"))
        raise ArtefactError(f"no {kind} model in {model_dir}; {home.next_steps(kind=kind)}")
    try:
        return Embedder.load(model_dir, device=device, compile=compile)
    except ArtefactError as exc:
        if vectors_sha is None:
            raise
        reason = str(exc).split(";")[0].removeprefix(f"{model_dir}").lstrip(": /")
        raise ArtefactError(model_missing_problem(home, kind, vectors_sha, reason)) from exc


def _vectors_model(home: Home, kind: str) -> str | None:
    """The SHA-256 of the ``kind`` model the home's vectors were made by, per its manifest (None: none)."""
    try:
        manifest = home.read_manifest(missing_ok=True)
    except ArtefactError:
        return None
    return manifest.model.sha256 if manifest.model is not None and manifest.model.kind == kind else None


def open_store(home: Home, db_url: str | None) -> MetadataStore:
    """The metadata store of the home (``--db`` URL, else HOME/meta.sqlite)."""
    if db_url is None:
        home.root.mkdir(parents=True, exist_ok=True)
    return MetadataStore(home.db_url(db_url))


def record_model(home: Home, manifest: Manifest, embedder: Embedder) -> Manifest:
    """Write the model and feature config into the manifest (no-op when already recorded).

    Raises ArtefactError when the manifest records vectors of another model (a new home is needed).
    """
    entry = ModelEntry(kind=embedder.model_config.kind, sha256=embedder.weights_sha256,
                       embedding_dim=embedder.embedding_dim, front_end=embedder.front_end_config.key)
    if manifest.model == entry and manifest.feature_config == embedder.feature_config:
        return manifest
    if manifest.model is not None and manifest.model.sha256 != entry.sha256:
        raise ArtefactError(model_replaced_problem(home, entry.kind, "the home's vectors", manifest.model.sha256,
                                                   entry.sha256))
    return home.write_manifest(dataclasses.replace(manifest, model=entry, feature_config=embedder.feature_config))


def require_embedded(home: Home, db_url: str | None = None) -> Manifest:
    """The manifest of a home with stored vectors, its model entry restored if it was lost.

    A missing manifest (or one without a model) over a store whose vectors come from a model in
    the home is rewritten from that model, so build-index repairs a lost manifest. Raises
    ArtefactError naming the next steps when nothing is embedded, or a new home when the stored
    vectors come from a model the home does not hold.
    """
    manifest = home.read_manifest(missing_ok=True)
    if manifest.model is None and db_url is None and not home.db_path.is_file():
        raise ArtefactError(f"nothing is embedded in {home.root} yet; {home.next_steps(embedded=False)}")
    with open_store(home, db_url) as store:
        stored_sha, _ = store.embedding_source()
    if manifest.model is not None and manifest.feature_config is not None:
        if stored_sha is not None and stored_sha != manifest.model.sha256:
            raise ArtefactError(model_replaced_problem(home, manifest.model.kind, "the store's vectors", stored_sha,
                                                       manifest.model.sha256))
        return manifest
    if stored_sha is None:
        raise ArtefactError(f"nothing is embedded in {home.root} yet; {home.next_steps(embedded=False)}")
    cards = {kind: read_card(home.model_dir(kind)) for kind in home.trained_kinds()}
    for kind, card in cards.items():
        if card.weights_sha256 == stored_sha:
            log.warning("%s does not record the stored vectors; recording the %s model that made them",
                        home.manifest_path, kind)
            return record_model(home, manifest, load_embedder(home, kind))
    if not cards:
        raise ArtefactError(model_missing_problem(home, DEFAULT_MODEL_KIND, stored_sha, f"no {SIDECAR_FILE}"))
    kind, card = next(iter(cards.items()))
    raise ArtefactError(model_replaced_problem(home, kind, "the home's vectors", stored_sha, card.weights_sha256))


def require_index(home: Home, manifest: Manifest) -> IndexEntry:
    """The manifest's index entry; ArtefactError naming the next steps when there is none."""
    if manifest.model is None:
        raise ArtefactError(f"nothing is embedded in {home.root} yet; {home.next_steps()}")
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
