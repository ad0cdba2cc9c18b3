"""The home directory (everything a query needs, side by side) and its manifest.json.

Layout of HOME::

    models/<kind>/     the embedder (written by singerid.embedder)
    meta.sqlite        metadata store (unless --db names another SQLAlchemy URL)
    shards/            append-only embedding shards (singerid.index.shards)
    index/             FAISS index files; the manifest names the current one
    manifest.json      model hash and kind, feature config, index type/params, counts, checksums

The manifest is written atomically and read with validation; a missing, malformed or newer
manifest is an ArtefactError that names the repair. Index files get unique names and the old
one is deleted only after the manifest points at the new one, so a crash at any moment leaves a
manifest and an index file that belong together.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from singerid.config import FeatureConfig
from singerid.errors import ArtefactError, ParameterError, SingeridError
from singerid.index.choice import IndexSpec
from singerid.index.files import atomic_write_bytes

log = logging.getLogger(__name__)

HOME_ENV = "SINGERID_HOME"  # same name as singerid.cli.common.HOME_ENV
DEFAULT_HOME = "singerid-home"  # same as singerid.cli.common.DEFAULT_HOME
MANIFEST_FORMAT = "singerid-manifest"
MANIFEST_VERSION = 1  # bump when a field changes meaning (new fields with defaults keep old manifests readable)
MODEL_SIDECAR = "model.json"  # same as singerid.embedder.checkpoint.SIDECAR_FILE: present once a model is trained
INDEX_SUFFIX = ".faiss"
BACKEND_SUFFIX = ".backend.npz"  # the fitted LDA/WCCN projection beside its index
IVFDATA_SUFFIX = ".ivfdata"  # on-disk inverted lists beside their index file (singerid.index.ondisk)


def utc_timestamp() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """The embedder whose vectors fill the store and index."""

    kind: str  # "crnn" or "attcrnn"
    sha256: str  # Embedder.weights_sha256
    embedding_dim: int  # d
    front_end: str = "mix"  # FrontEndConfig.key of the model: "mix" or "vocals@<separation fingerprint>"


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """The current FAISS index file and what it was built from."""

    file: str  # file name inside HOME/index/
    sha256: str  # of the file's bytes
    size_bytes: int
    spec: IndexSpec  # type and parameters
    n_vectors: int
    model_sha256: str  # model that made the indexed vectors
    feature_config: FeatureConfig
    ids_sha256: str  # files.ids_sha256 of the indexed block ids
    splits: tuple[str, ...] | None = None  # splits indexed; None = all stored blocks
    gpu: bool = False  # built with faiss-gpu
    front_end: str = "mix"  # FrontEndConfig.key of the model that made the indexed vectors
    backend: str = "none"  # projection applied before indexing and to queries: "none" or "lda-wccn"
    backend_file: str | None = None  # file name inside HOME/index/ holding the fitted back end
    backend_sha256: str | None = None  # of that file's bytes
    built_at: str = field(default_factory=utc_timestamp)  # ISO 8601, UTC


@dataclass(frozen=True, slots=True)
class Manifest:
    """Contents of manifest.json. Every part is optional until the command that writes it ran."""

    model: ModelEntry | None = None
    feature_config: FeatureConfig | None = None
    index: IndexEntry | None = None
    updated_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        index = None
        if self.index is not None:
            i = self.index
            index = {"file": i.file, "sha256": i.sha256, "size_bytes": i.size_bytes, "spec": i.spec.to_dict(),
                     "n_vectors": i.n_vectors, "model_sha256": i.model_sha256,
                     "feature_config": i.feature_config.to_dict(), "ids_sha256": i.ids_sha256,
                     "splits": list(i.splits) if i.splits is not None else None, "gpu": i.gpu,
                     "front_end": i.front_end, "backend": i.backend, "backend_file": i.backend_file,
                     "backend_sha256": i.backend_sha256, "built_at": i.built_at}
        return {
            "format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "updated_at": self.updated_at,
            "model": None if self.model is None else
            {"kind": self.model.kind, "sha256": self.model.sha256, "embedding_dim": self.model.embedding_dim,
             "front_end": self.model.front_end},
            "feature_config": None if self.feature_config is None else self.feature_config.to_dict(),
            "index": index,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Manifest:
        """Validate and parse; raises ArtefactError (the caller adds the file name) on any defect."""
        if not isinstance(data, Mapping) or data.get("format") != MANIFEST_FORMAT:
            raise ArtefactError("not a singerid manifest (no 'format': 'singerid-manifest')")
        if data.get("version") != MANIFEST_VERSION:
            raise ArtefactError(f"manifest version {data.get('version')!r}, this singerid reads {MANIFEST_VERSION}")
        unknown = sorted(set(data) - {"format", "version", "updated_at", "model", "feature_config", "index"})
        if unknown:
            raise ArtefactError(f"unknown manifest field(s) {unknown}")
        try:
            model = None if data.get("model") is None else ModelEntry(**data["model"])
            features = None if data.get("feature_config") is None else FeatureConfig.from_dict(data["feature_config"])
            index = None
            if data.get("index") is not None:
                raw = dict(data["index"])
                raw["spec"] = IndexSpec.from_dict(raw["spec"])
                raw["feature_config"] = FeatureConfig.from_dict(raw["feature_config"])
                raw["splits"] = tuple(raw["splits"]) if raw.get("splits") is not None else None
                index = IndexEntry(**raw)
        except (TypeError, KeyError, SingeridError) as exc:
            raise ArtefactError(f"malformed manifest entry: {exc}") from exc
        _check_types(model, index)
        return cls(model, features, index, data.get("updated_at"))


def _check_types(model: ModelEntry | None, index: IndexEntry | None) -> None:
    if model is not None and not (isinstance(model.sha256, str) and isinstance(model.embedding_dim, int)):
        raise ArtefactError(f"malformed model entry {model!r}")
    if index is not None and not (isinstance(index.n_vectors, int) and isinstance(index.size_bytes, int)
                                  and isinstance(index.file, str) and "/" not in index.file
                                  and (index.backend_file is None or (isinstance(index.backend_file, str)
                                                                      and "/" not in index.backend_file))):
        raise ArtefactError(f"malformed index entry for file {index.file!r}")


@dataclass(frozen=True, slots=True)
class Home:
    """Paths inside one home directory (nothing is created until ``create``)."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))  # accept str too

    @classmethod
    def resolve(cls, path: str | os.PathLike[str] | None = None, *,
                environ: Mapping[str, str] | None = None) -> Home:
        """The home from ``path`` (``--home``), else $SINGERID_HOME, else ./singerid-home."""
        env = os.environ if environ is None else environ
        chosen = path if path is not None else env.get(HOME_ENV) or DEFAULT_HOME
        root = Path(chosen).expanduser()
        if root.exists() and not root.is_dir():
            raise ParameterError(f"home {str(root)!r} exists but is not a directory")
        return cls(root.absolute())

    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    @property
    def db_path(self) -> Path:
        return self.root / "meta.sqlite"

    @property
    def shards_dir(self) -> Path:
        return self.root / "shards"

    @property
    def index_dir(self) -> Path:
        return self.root / "index"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    def model_dir(self, kind: str) -> Path:
        return self.models_dir / kind

    def db_url(self, override: str | None = None) -> str:
        """``--db`` if given, else SQLite in the home."""
        return override if override else f"sqlite:///{self.db_path}"

    def create(self) -> Home:
        """Create the home and its sub-directories (idempotent)."""
        for directory in (self.root, self.shards_dir, self.index_dir, self.models_dir):
            directory.mkdir(parents=True, exist_ok=True)
        return self

    # --- index files ----------------------------------------------------------------------
    def new_index_path(self, index_type: str) -> Path:
        """A fresh, unused file name for an index about to be written."""
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
        return self.index_dir / f"blocks-{index_type}-{stamp}-{os.getpid()}{INDEX_SUFFIX}"

    def index_path(self, entry: IndexEntry) -> Path:
        return self.index_dir / entry.file

    def backend_path(self, entry: IndexEntry) -> Path | None:
        """The fitted back end of ``entry`` (None when its back end is "none")."""
        return None if entry.backend_file is None else self.index_dir / entry.backend_file

    def data_path(self, entry: IndexEntry) -> Path | None:
        """The on-disk inverted lists of ``entry`` (None when its lists are inside the index file)."""
        return self.index_path(entry).with_suffix(IVFDATA_SUFFIX) if entry.spec.on_disk else None

    def prune_index_files(self, manifest: Manifest) -> list[Path]:
        """Delete index files (and stale temporaries) the manifest does not name; returns them."""
        keep = {manifest.index.file, manifest.index.backend_file} if manifest.index is not None else set()
        if manifest.index is not None and manifest.index.spec.on_disk:
            keep.add(self.data_path(manifest.index).name)
        removed = []
        if self.index_dir.is_dir():
            for path in self.index_dir.iterdir():
                if path.name not in keep and (path.suffix in (INDEX_SUFFIX, IVFDATA_SUFFIX)
                                              or path.name.endswith(BACKEND_SUFFIX) or ".tmp-" in path.name):
                    path.unlink()
                    removed.append(path)
        return removed

    # --- what is there, and what to run next -----------------------------------------------
    def trained_kinds(self) -> tuple[str, ...]:
        """Model kinds with a finished model in HOME/models (sorted); () for a home without one."""
        if not self.models_dir.is_dir():
            return ()
        return tuple(sorted(d.name for d in self.models_dir.iterdir() if (d / MODEL_SIDECAR).is_file()))

    def has_vectors(self) -> bool:
        """Whether any embedding shard exists (something was embedded into this home)."""
        return self.shards_dir.is_dir() and any(self.shards_dir.iterdir())

    def next_steps(self, *, kind: str | None = None, embedded: bool | None = None) -> str:
        """The commands, in the order that works, that make this home answer queries.

        Judged from what is on disk: no model -> train, embed-corpus, build-index; a model but
        nothing embedded -> embed-corpus, build-index; else build-index. ``kind``: the model the
        home needs (None: any); ``embedded``: whether vectors are stored (None: judged from the shards).
        """
        has_model = (kind in self.trained_kinds()) if kind else bool(self.trained_kinds())
        embedded = self.has_vectors() if embedded is None else embedded
        steps = setup_commands(self.root, kind=kind)
        if has_model:
            steps = steps[1:] if not embedded else steps[2:]
        return "run " + ", then ".join(steps)

    # --- manifest -------------------------------------------------------------------------
    def read_manifest(self, *, missing_ok: bool = False) -> Manifest:
        """Parse manifest.json. Missing: an empty Manifest if ``missing_ok``, else ArtefactError.

        A malformed manifest is an ArtefactError naming the repair (move it aside, then build-index
        writes a new one); one written by a newer singerid asks for an upgrade instead.
        """
        path = self.manifest_path
        if not path.is_file():
            if missing_ok:
                return Manifest()
            raise ArtefactError(f"{path} does not exist; {self.next_steps()}")
        aside = (f"move it aside (`mv {path} {path}.bad`), then run `singerid build-index --home {self.root}` "
                 "to write a new one")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ArtefactError(f"cannot read {path}: {exc}; {aside}") from exc
        version = data.get("version") if isinstance(data, Mapping) else None
        if isinstance(version, int) and version > MANIFEST_VERSION:
            raise ArtefactError(f"{path}: manifest version {version}, this singerid reads {MANIFEST_VERSION}; "
                                "it was written by a newer singerid: upgrade singerid to use this home")
        try:
            return Manifest.from_dict(data)
        except ArtefactError as exc:
            raise ArtefactError(f"{path}: {exc}; {aside}") from exc

    def write_manifest(self, manifest: Manifest) -> Manifest:
        """Write manifest.json atomically (stamping ``updated_at``); returns what was written."""
        stamped = replace(manifest, updated_at=utc_timestamp())
        self.root.mkdir(parents=True, exist_ok=True)
        text = json.dumps(stamped.to_dict(), indent=2, sort_keys=True) + "\n"
        atomic_write_bytes(self.manifest_path, text.encode("utf-8"))
        log.info("wrote %s", self.manifest_path)
        return stamped


def setup_commands(root: Path, *, kind: str | None = None) -> list[str]:
    """The three commands that fill the home at ``root`` from a dataset, in order (quoted for messages)."""
    model = f" --model {kind}" if kind else ""
    return [f"`singerid train DATA{model} --home {root}`", f"`singerid embed-corpus DATA --home {root}`",
            f"`singerid build-index --home {root}`"]


def new_home_steps(kind: str | None = None) -> str:
    """How to start over in a new home (for vectors no model in their home can use), as one clause."""
    return "start a new home: run " + ", then ".join(setup_commands(Path("NEW_HOME"), kind=kind))
