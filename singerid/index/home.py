"""The home directory (everything a query needs, side by side) and its manifest.json.

Layout of HOME::

    models/<kind>/     the embedder (written by singerid.embedder)
    meta.sqlite        metadata store (unless --db names another SQLAlchemy URL)
    shards/            append-only embedding shards (singerid.index.shards)
    index/             FAISS index files; the manifest names the current one
    manifest.json      model hash and kind, feature config, index type/params, counts, checksums

The manifest is written atomically and read with validation; a missing, malformed or newer
manifest is an ArtefactError that names the repair. Every name it holds is checked (a model kind
singerid knows, plain file names inside the home: no ``../``, no absolute paths). Index files get
unique names; a writer installs a new one (written, fsynced, renamed), then the manifest, and
deletes only files two generations old, so a crash at any moment leaves a manifest and an index
file that belong together, and a reader that read the previous manifest still finds its file.
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
KNOWN_MODEL_KINDS = ("crnn", "attcrnn")  # same as singerid.config.ModelConfig.kind
INDEX_SUFFIX = ".faiss"
BACKEND_SUFFIX = ".backend.npz"  # the fitted LDA/WCCN projection beside its index
IVFDATA_SUFFIX = ".ivfdata"  # on-disk inverted lists beside their index file (singerid.index.ondisk)
CALIBRATION_SUFFIX = ".calibration.json"  # the unknown-singer threshold made with its index (one generation)


def utc_timestamp() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """The embedder whose vectors fill the store and index."""

    kind: str  # "crnn" or "attcrnn"
    sha256: str  # Embedder.weights_sha256
    embedding_dim: int  # d
    front_end: str = "mix"  # FrontEndConfig.key of the model: "mix" or "vocals@<separation fingerprint>"
    card_sha256: str | None = None  # of models/<kind>/model.json (singer list, configs); None: older manifest


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
    calibration_file: str | None = None  # file name inside HOME/index/: the threshold made on this index
    calibration_sha256: str | None = None  # of that file's bytes (HOME/calibration.json is a copy for people)
    data_sha256: str | None = None  # of the on-disk inverted lists (.ivfdata) beside the file, when on disk
    data_size_bytes: int | None = None
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
                     "backend_sha256": i.backend_sha256, "calibration_file": i.calibration_file,
                     "calibration_sha256": i.calibration_sha256,
                     "data_sha256": i.data_sha256, "data_size_bytes": i.data_size_bytes, "built_at": i.built_at}
        return {
            "format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "updated_at": self.updated_at,
            "model": None if self.model is None else
            {"kind": self.model.kind, "sha256": self.model.sha256, "embedding_dim": self.model.embedding_dim,
             "front_end": self.model.front_end, "card_sha256": self.model.card_sha256},
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
        except (TypeError, KeyError, ValueError, AttributeError, SingeridError) as exc:
            raise ArtefactError(f"malformed manifest entry: {exc}") from exc
        _check_types(model, index)
        return cls(model, features, index, data.get("updated_at"))


def _check_types(model: ModelEntry | None, index: IndexEntry | None) -> None:
    """Types, and every name that becomes a path: a known model kind, plain file names."""
    if model is not None:
        if model.kind not in KNOWN_MODEL_KINDS:
            raise ArtefactError(f"model kind {model.kind!r} is not one of {', '.join(KNOWN_MODEL_KINDS)}")
        if not (isinstance(model.sha256, str) and isinstance(model.embedding_dim, int)
                and (model.card_sha256 is None or isinstance(model.card_sha256, str))):
            raise ArtefactError(f"malformed model entry {model!r}")
    if index is None:
        return
    for name in (index.file, index.backend_file, index.calibration_file):
        if name is not None and not is_plain_name(name):
            raise ArtefactError(f"index file name {name!r} is not a plain file name inside the home")
    if not (isinstance(index.n_vectors, int) and isinstance(index.size_bytes, int) and isinstance(index.sha256, str)
            and index.file.endswith(INDEX_SUFFIX)
            and all(v is None or isinstance(v, str) for v in (index.backend_sha256, index.calibration_sha256,
                                                                index.data_sha256))
            and (index.data_size_bytes is None or isinstance(index.data_size_bytes, int))):
        raise ArtefactError(f"malformed index entry for file {index.file!r}")


def is_plain_name(name: object) -> bool:
    """Whether ``name`` is one file name (no directory part, not . or .., no NUL, not hidden)."""
    return (isinstance(name, str) and 0 < len(name) <= 255 and not name.startswith(".")
            and not any(c in name for c in "/\\\0") and Path(name).name == name)


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

    def calibration_path(self, entry: IndexEntry) -> Path | None:
        """The unknown-singer threshold made with ``entry`` (None: too little data, or an older home)."""
        return None if entry.calibration_file is None else self.index_dir / entry.calibration_file

    def data_path(self, entry: IndexEntry) -> Path | None:
        """The on-disk inverted lists of ``entry`` (None when its lists are inside the index file)."""
        return self.index_path(entry).with_suffix(IVFDATA_SUFFIX) if entry.spec.on_disk else None

    def index_file_names(self, entry: IndexEntry | None) -> set[str]:
        """The files in HOME/index/ that ``entry`` uses (index, back end, on-disk lists)."""
        if entry is None:
            return set()
        names = {entry.file} | {name for name in (entry.backend_file, entry.calibration_file) if name}
        return names | ({self.data_path(entry).name} if entry.spec.on_disk else set())

    def prune_index_files(self, manifest: Manifest, *, keep: tuple[IndexEntry | None, ...] = ()) -> list[Path]:
        """Delete index files (and stale temporaries) that neither the manifest nor ``keep`` name.

        A writer that just pointed the manifest at a new index passes the previous entry in
        ``keep``: a reader that read the previous manifest a moment ago still finds its files
        (they go at the next swap). Call only while holding the writer lock. Returns what was deleted.
        """
        names = self.index_file_names(manifest.index)
        for entry in keep:
            names |= self.index_file_names(entry)
        removed = []
        if self.index_dir.is_dir():
            for path in self.index_dir.iterdir():
                if path.name not in names and (path.suffix in (INDEX_SUFFIX, IVFDATA_SUFFIX)
                                              or path.name.endswith((BACKEND_SUFFIX, CALIBRATION_SUFFIX))
                                              or ".tmp-" in path.name):
                    path.unlink()
                    removed.append(path)
        return removed

    def clean_leftovers(self) -> list[Path]:
        """Delete the temporary files of killed writers (``.tmp-`` beside the manifest, calibration and
        index files, half-created shards). Call only while holding the writer lock; returns them."""
        removed = []
        for directory, pattern in ((self.root, ".*.tmp-*"), (self.index_dir, "*.tmp-*"),
                                   (self.shards_dir, "shard-*.tmp")):
            if directory.is_dir():
                for path in directory.glob(pattern):
                    if path.is_file():
                        path.unlink(missing_ok=True)
                        removed.append(path)
        if removed:
            log.info("removed %d temporary file(s) left by an interrupted command", len(removed))
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
