"""Do model, store, index file and manifest agree? A pure check over what each part reports.

The pipeline gathers the facts (``MetadataStore.block_ids`` / ``n_blocks`` / ``embedding_source``,
``VectorIndex.ids`` / ``len``, the loaded model's hash and feature config) and passes them here;
nothing is opened or imported from FAISS or SQLAlchemy. Each problem is one line ending with the
command that repairs it, and problems are reported layer by layer (see ``find_problems``) so
that no line suggests a repair that cannot work yet. ``info --check`` prints them; every other command calls
``raise_if_inconsistent`` on load.

The index is a snapshot: it is compared with the store rows it covers (its ids), not with the
whole store, because a writer may be adding songs that the next index swap brings in. Blocks
the store holds and the index does not yet are "pending", not a problem; blocks the index
holds and the store lacks are one (writers swap the index before deleting rows).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from singerid.config import FeatureConfig
from singerid.errors import ArtefactError
from singerid.index.files import ids_sha256, sha256_file
from singerid.index.home import MODEL_SIDECAR, Home, Manifest, new_home_steps


@dataclass(frozen=True, slots=True)
class VectorsState:
    """What the store or the loaded index says about the reference vectors it holds."""

    n_vectors: int
    ids_sha256: str | None = None  # files.ids_sha256 of its ids; None = not computed (quick check)
    model_sha256: str | None = None  # the model that made them, where known
    feature_config: FeatureConfig | None = None


def find_problems(home: Home, manifest: Manifest, *, store: VectorsState | None = None,
                  index: VectorsState | None = None, model_sha256: str | None = None,
                  feature_config: FeatureConfig | None = None, front_end: str | None = None,
                  verify_checksum: bool = False, model_kind: str | None = None,
                  model_error: str | None = None, verify_data: bool = False) -> list[str]:
    """Human-readable disagreements between the parts given; an empty list when they agree.

    store: the store's blocks among those the index holds (``covered_state``), or before an index
    exists all its blocks; index: the loaded FAISS index; model_sha256 / feature_config: the
    embedder in the home. model.json and the threshold file are always hashed (small files);
    ``verify_checksum`` also re-hashes the index file (about 0.09 s per 130 MiB, 1M vectors at
    d=32: as much as loading it), ``verify_data`` the back end (``Backend.load`` checks it on
    load) and the on-disk inverted lists (can be many GiB: info --check); otherwise only their
    sizes are compared.
    ``model_kind`` / ``model_error``: the kind the home needs and why it could not be loaded.

    Problems come in layers, and only the first layer with a problem is reported, so that
    every line names a repair that works now: (1) the vectors cannot be used with the home's
    model (missing or replaced: a new home), (2) the manifest does not record the stored
    vectors (build-index), (3) the index file disagrees with the store or the model (build-index).
    """
    problems = _model_problems(home, manifest, store, model_sha256, feature_config, front_end,
                               model_kind, model_error)
    card = card_problem(home, manifest)
    if card is not None and not problems:
        problems.append(card)
    if problems:
        return problems
    rebuild = f"run `singerid build-index --home {home.root}`"
    if manifest.model is None:
        if store is not None and store.n_vectors > 0:
            problems.append(f"{home.manifest_path} does not record the {store.n_vectors:,} stored blocks "
                            f"(missing or rewritten); {rebuild}")
        return problems
    entry = manifest.index
    if entry is None:
        if store is not None or index is not None:
            problems.append(f"no index is recorded in {home.manifest_path}; {rebuild}")
        return problems
    path = home.index_path(entry)
    if not path.is_file():
        problems.append(f"index file {path} named by the manifest is missing; {rebuild}")
    elif path.stat().st_size != entry.size_bytes:
        problems.append(f"index file {path} has {path.stat().st_size:,} bytes, the manifest says "
                        f"{entry.size_bytes:,}; {rebuild}")
    elif verify_checksum and sha256_file(path) != entry.sha256:
        problems.append(f"index file {path} does not match its SHA-256 in the manifest; {rebuild}")
    data = home.data_path(entry)
    if data is not None and not data.is_file():
        problems.append(f"the inverted lists {data} of the on-disk index are missing; {rebuild}")
    elif data is not None and entry.data_size_bytes is not None and data.stat().st_size != entry.data_size_bytes:
        problems.append(f"the inverted lists {data} have {data.stat().st_size:,} bytes, the manifest says "
                        f"{entry.data_size_bytes:,}; {rebuild}")
    elif data is not None and verify_data and entry.data_sha256 is not None and sha256_file(data) != entry.data_sha256:
        problems.append(f"the inverted lists {data} do not match their SHA-256 in the manifest; {rebuild}")
    calibration = home.calibration_path(entry)
    if calibration is not None and not calibration.is_file():
        problems.append(f"{calibration} (the unknown-singer threshold of the index) is missing; {rebuild}")
    elif calibration is not None and sha256_file(calibration) != entry.calibration_sha256:
        problems.append(f"{calibration} does not match its SHA-256 in the manifest (changed by hand?); {rebuild}")
    backend = home.backend_path(entry)
    if entry.backend != "none" and (backend is None or not backend.is_file()):
        problems.append(f"the {entry.backend} back end of the index ({backend}) is missing; {rebuild}")
    elif backend is not None and verify_data and sha256_file(backend) != entry.backend_sha256:  # on load: Backend.load
        problems.append(f"back end file {backend} does not match its SHA-256 in the manifest; {rebuild}")
    expected = model_sha256 or (store.model_sha256 if store is not None else None)
    if expected is not None and entry.model_sha256 != expected:
        problems.append(f"the index was built from vectors of model {_short(entry.model_sha256)}, the store holds "
                        f"model {_short(expected)}; {rebuild}")
    wanted_features = feature_config or (store.feature_config if store is not None else None)
    if wanted_features is not None and entry.feature_config != wanted_features:
        problems.append(f"the index was built with feature config {entry.feature_config.fingerprint()}, the model "
                        f"uses {wanted_features.fingerprint()}; {rebuild}")
    if front_end is not None and entry.front_end != front_end:
        problems.append(f"the index was built with front end {entry.front_end!r} but the model uses "
                        f"{front_end!r}; {rebuild}")
    for name, state in (("the loaded index", index), ("the store", store)):
        if state is None:
            continue
        if name == "the store" and state.n_vectors < entry.n_vectors:
            problems.append(f"the store lacks {entry.n_vectors - state.n_vectors:,} of the "
                            f"{entry.n_vectors:,} blocks the index holds; {rebuild}")
        elif state.n_vectors != entry.n_vectors:
            problems.append(f"{name} has {state.n_vectors:,} vectors, the manifest's index "
                            f"{entry.n_vectors:,}; {rebuild}")
        elif state.ids_sha256 is not None and state.ids_sha256 != entry.ids_sha256:
            problems.append(f"{name} holds other block ids than the manifest's index (same count); {rebuild}")
    return problems


def covered_state(store_ids: np.ndarray, index_ids: np.ndarray, *, model_sha256: str | None = None,
                  feature_config: FeatureConfig | None = None) -> VectorsState:
    """The store's side of the snapshot: its blocks among ``index_ids`` (int64 sorted ids of both)."""
    covered = store_ids[np.isin(store_ids, index_ids, assume_unique=True)]
    return VectorsState(len(covered), ids_sha256(covered), model_sha256, feature_config)


def card_problem(home: Home, manifest: Manifest) -> str | None:
    """model.json (the singer list that names every answer) changed since the manifest recorded it."""
    model = manifest.model
    if model is None or model.card_sha256 is None:
        return None
    card = home.model_dir(model.kind) / MODEL_SIDECAR
    if card.is_file() and sha256_file(card) != model.card_sha256 and _card_weights(card) == model.sha256:
        # same weights, other card: edited by hand (a replaced model is a problem of its own, with its own repair)
        return (f"{card} was changed after the home's vectors were embedded (it holds the singer names of the "
                f"answers; SHA-256 {_short(sha256_file(card))}, the manifest records {_short(model.card_sha256)}): "
                "restore it from a backup - it is never edited by hand")
    return None


def _card_weights(card) -> str | None:  # noqa: ANN001 (Path)
    """The weights SHA-256 a model.json names (None when it cannot be read)."""
    try:
        data = json.loads(card.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    return data.get("weights_sha256") if isinstance(data, dict) else None


def model_missing_problem(home: Home, kind: str, vectors_sha256: str | None, reason: str) -> str:
    """The home holds vectors of a ``kind`` model that cannot be loaded (``reason``): one line with the repair."""
    made_by = f"model {_short(vectors_sha256)}" if vectors_sha256 else f"its {kind} model"
    return (f"the home's vectors were made by {made_by}, which cannot be loaded from {home.model_dir(kind)} "
            f"({reason}); restore that folder from a backup, or {new_home_steps(kind)}")


def model_replaced_problem(home: Home, kind: str, what: str, vectors_sha256: str, model_sha256: str) -> str:
    """``what`` ("the home's vectors", "the store's vectors") come from another model than the home's: one line."""
    why = "another home's store, given with --db?" if what.startswith("the store") else "retrained or replaced"
    return (f"{what} were made by model {_short(vectors_sha256)}, but {home.model_dir(kind)} holds model "
            f"{_short(model_sha256)} ({why}): a model only reads its own vectors; restore the "
            f"model folder from a backup, or {new_home_steps(kind)}")


def _model_problems(home: Home, manifest: Manifest, store: VectorsState | None, model_sha256: str | None,
                    feature_config: FeatureConfig | None, front_end: str | None, kind: str | None,
                    model_error: str | None) -> list[str]:
    """Layer 1: vectors that no command can make the home's model read (every line: a new home)."""
    kind = kind or (manifest.model.kind if manifest.model is not None else None) or "attcrnn"
    recorded = manifest.model.sha256 if manifest.model is not None else None
    stored = store.model_sha256 if store is not None else None
    has_vectors = recorded is not None or (store is not None and (store.n_vectors > 0 or stored is not None))
    if model_error is not None:
        return [model_missing_problem(home, kind, recorded or stored, model_error)] if has_vectors else []
    if model_sha256 is None:
        return []
    if recorded is not None and recorded != model_sha256:
        return [model_replaced_problem(home, kind, "the home's vectors", recorded, model_sha256)]
    if stored is not None and stored != model_sha256:
        what = "the store's vectors" if recorded is not None else "the home's vectors"
        return [model_replaced_problem(home, kind, what, stored, model_sha256)]
    why = None
    if feature_config is not None and manifest.feature_config is not None and manifest.feature_config != feature_config:
        why = (f"the home's vectors were made with feature config {manifest.feature_config.fingerprint()}, the model "
               f"in {home.model_dir(kind)} uses {feature_config.fingerprint()}")
    elif feature_config is not None and store is not None and store.feature_config is not None \
            and store.feature_config != feature_config:
        why = (f"the store's vectors were made with feature config {store.feature_config.fingerprint()}, the model "
               f"in {home.model_dir(kind)} uses {feature_config.fingerprint()}")
    elif front_end is not None and manifest.model is not None and manifest.model.front_end != front_end:
        why = (f"the home's vectors were made with front end {manifest.model.front_end!r}, the model in "
               f"{home.model_dir(kind)} uses {front_end!r}")
    return [f"{why}; restore the model folder from a backup, or {new_home_steps(kind)}"] if why else []


def raise_if_inconsistent(problems: list[str]) -> None:
    """Raise ArtefactError with the first problem (and how many more) if there is any."""
    if problems:
        more = f" (and {len(problems) - 1} more problem(s); see `singerid info --check`)" if len(problems) > 1 else ""
        raise ArtefactError(problems[0] + more)


def _short(sha256: str) -> str:
    return sha256[:12]
