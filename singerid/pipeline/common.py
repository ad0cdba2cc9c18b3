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
from singerid.index.consistency import card_problem, model_missing_problem, model_replaced_problem
from singerid.index.files import crash_point, ids_sha256, sha256_file
from singerid.index.home import Home, IndexEntry, Manifest, ModelEntry
from singerid.index.store import MetadataStore
from singerid.index.vectors import VectorIndex
from singerid.pipeline.calibrate import copy_calibration, save_index_calibration

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
    changed = card_problem(home, home.read_manifest(missing_ok=True))
    if changed is not None:  # an edited singer list would silently relabel every answer
        raise ArtefactError(changed)
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
    card = home.model_dir(embedder.model_config.kind) / SIDECAR_FILE
    entry = ModelEntry(kind=embedder.model_config.kind, sha256=embedder.weights_sha256,
                       embedding_dim=embedder.embedding_dim, front_end=embedder.front_end_config.key,
                       card_sha256=sha256_file(card) if card.is_file() else None)
    if manifest.model == entry and manifest.feature_config == embedder.feature_config:
        return manifest
    if manifest.model is not None and manifest.model.card_sha256 not in (None, entry.card_sha256):
        raise ArtefactError(card_problem(home, manifest) or f"{card} changed since the vectors were embedded")
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


def save_index(home: Home, manifest: Manifest, index: VectorIndex, *, calibration=None) -> Manifest:
    """Write ``index`` (and its unknown-singer ``calibration``, a Calibration or None) under fresh
    names, point the manifest at them, then delete the generation before the previous one.

    Used after a write changed an index in place: the entry keeps its spec and splits. The
    caller holds the writer lock. Readers see the old manifest and files or the new ones.
    """
    entry = require_index(home, manifest)
    path = home.new_index_path(entry.spec.index_type)
    sha = index.save(path)
    calibration_file, calibration_sha = save_index_calibration(home, path, calibration)
    held = index.ids()
    new_entry = dataclasses.replace(entry, file=path.name, sha256=sha, size_bytes=path.stat().st_size,
                                    n_vectors=len(index), ids_sha256=ids_sha256(held),
                                    calibration_file=calibration_file, calibration_sha256=calibration_sha,
                                    **data_fields(home, path, entry.spec.on_disk))
    written = install_index(home, manifest, new_entry)
    log.info("index now holds %d vectors (%s)", len(index), path.name)
    return written


def data_fields(home: Home, index_path, on_disk: bool) -> dict:
    """The manifest fields of an index's on-disk lists (SHA-256 and size), empty when it has none."""
    from singerid.index.ondisk import data_path_for

    if not on_disk:
        return {"data_sha256": None, "data_size_bytes": None}
    data = data_path_for(index_path)
    return {"data_sha256": sha256_file(data), "data_size_bytes": data.stat().st_size}


def install_index(home: Home, manifest: Manifest, entry: IndexEntry) -> Manifest:
    """Point the manifest at ``entry`` (its files written), keep the previous generation for readers
    that opened it a moment ago, delete older ones, refresh HOME/calibration.json. Writer lock held."""
    crash_point("new index generation written, manifest not yet")
    written = home.write_manifest(dataclasses.replace(manifest, index=entry))
    home.prune_index_files(written, keep=(manifest.index,))
    crash_point("older index generations pruned")
    copy_calibration(home, entry)
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
