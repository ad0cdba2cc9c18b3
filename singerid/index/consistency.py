"""Do model, store, index file and manifest agree? A pure check over what each part reports.

The pipeline gathers the facts (``MetadataStore.block_ids`` / ``n_blocks`` / ``embedding_source``,
``VectorIndex.ids`` / ``len``, the loaded model's hash and feature config) and passes them here;
nothing is opened or imported from FAISS or SQLAlchemy. Each problem is one line ending with the
command that repairs it. ``info --check`` prints them; every other command calls
``raise_if_inconsistent`` on load.
"""

from __future__ import annotations

from dataclasses import dataclass

from singerid.config import FeatureConfig
from singerid.errors import ArtefactError
from singerid.index.files import sha256_file
from singerid.index.home import Home, Manifest


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
                  verify_checksum: bool = False) -> list[str]:
    """Human-readable disagreements between the parts given; an empty list when they agree.

    store: the metadata store's blocks (restricted to the indexed splits); index: the loaded
    FAISS index; model_sha256 / feature_config: the embedder in the home. ``verify_checksum``
    re-hashes the index file (seconds for large indexes); otherwise only its size is compared.
    """
    rebuild = f"run `singerid build-index --home {home.root}`"
    reembed = "embed the corpus again into a new home (`singerid embed-corpus DIR --home NEW_HOME`)"
    problems: list[str] = []
    if model_sha256 is not None and manifest.model is not None and manifest.model.sha256 != model_sha256:
        problems.append(f"the manifest records model {_short(manifest.model.sha256)} but the model in the home is "
                        f"{_short(model_sha256)}; {reembed}")
    if feature_config is not None and manifest.feature_config is not None and manifest.feature_config != feature_config:
        problems.append(f"the manifest's feature config ({manifest.feature_config.fingerprint()}) differs from the "
                        f"model's ({feature_config.fingerprint()}); {reembed}")
    if front_end is not None and manifest.model is not None and manifest.model.front_end != front_end:
        problems.append(f"the home's vectors were made with front end {manifest.model.front_end!r} but the model "
                        f"uses {front_end!r}; {reembed}")
    if store is not None:
        problems += _source_problems("the store's embeddings", store, model_sha256, feature_config, reembed)
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
    backend = home.backend_path(entry)
    if entry.backend != "none" and (backend is None or not backend.is_file()):
        problems.append(f"the {entry.backend} back end of the index ({backend}) is missing; {rebuild}")
    elif backend is not None and verify_checksum and sha256_file(backend) != entry.backend_sha256:
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
        if state.n_vectors != entry.n_vectors:
            problems.append(f"{name} has {state.n_vectors:,} vectors, the manifest's index "
                            f"{entry.n_vectors:,}; {rebuild}")
        elif state.ids_sha256 is not None and state.ids_sha256 != entry.ids_sha256:
            problems.append(f"{name} holds other block ids than the manifest's index (same count); {rebuild}")
    return problems


def _source_problems(name: str, state: VectorsState, model_sha256: str | None,
                     feature_config: FeatureConfig | None, repair: str) -> list[str]:
    problems = []
    if model_sha256 is not None and state.model_sha256 is not None and state.model_sha256 != model_sha256:
        problems.append(f"{name} come from model {_short(state.model_sha256)}, the home's model is "
                        f"{_short(model_sha256)}; {repair}")
    if feature_config is not None and state.feature_config is not None and state.feature_config != feature_config:
        problems.append(f"{name} were made with feature config {state.feature_config.fingerprint()}, the model "
                        f"uses {feature_config.fingerprint()}; {repair}")
    return problems


def raise_if_inconsistent(problems: list[str]) -> None:
    """Raise ArtefactError with the first problem (and how many more) if there is any."""
    if problems:
        more = f" (and {len(problems) - 1} more problem(s); see `singerid info --check`)" if len(problems) > 1 else ""
        raise ArtefactError(problems[0] + more)


def _short(sha256: str) -> str:
    return sha256[:12]
