"""What `singerid train` must check in a home before it trains: never overwrite a model in use.

A home's stored vectors and its index are only readable with the model that made them (its
SHA-256 is recorded in the manifest and the store). Training again into HOME/models/<kind>
would replace that model, and every later query would fail; so training is refused while the
home holds vectors of that kind, and the error names what works instead (a new home). A home
whose vectors do not depend on the model (nothing embedded yet) may be trained again, and an
interrupted run resumes from its last epoch (HOME/models/<kind>/last.pt), as before.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from singerid.embedder.checkpoint import SIDECAR_FILE, read_card
from singerid.errors import ArtefactError
from singerid.index.home import Home
from singerid.index.store import MetadataStore

log = logging.getLogger(__name__)


def check_can_train(home: Home | str | os.PathLike[str], kind: str, *, data: str | os.PathLike[str] = "DATA") -> None:
    """Raise ArtefactError if training a ``kind`` model into ``home`` would break the home's vectors.

    ``data``: the dataset path, quoted in the suggested command. The home's vectors depend on
    its ``kind`` model when the manifest records vectors of that kind, or (manifest lost) when
    the home's SQLite store holds vectors of the model now in HOME/models/<kind>.
    """
    home = home if isinstance(home, Home) else Home(Path(home).absolute())
    model_dir = home.model_dir(kind)
    current = _model_sha256(model_dir)
    manifest = home.read_manifest(missing_ok=True)
    store_sha, n_blocks = _default_store(home)
    if manifest.model is not None:
        if manifest.model.kind != kind:
            return
        made_by = manifest.model.sha256
    elif current is not None and store_sha == current:
        made_by = current
    else:
        return  # nothing stored depends on a model of this kind
    parts = [f"a store of {n_blocks:,} blocks" if store_sha is not None else "stored vectors"]
    if manifest.index is not None:
        parts.append(f"an index of {manifest.index.n_vectors:,} vectors")
    held = " and ".join(parts)
    instead = f"train into a new home instead: `singerid train {data} --model {kind} --home NEW_HOME`"
    if current == made_by:
        raise ArtefactError(f"{home.root} holds {held} made by the {kind} model in {model_dir}; training again "
                            f"would overwrite that model and leave them unreadable; to retrain, {instead} "
                            f"(then embed-corpus and build-index there), or delete {home.root} first")
    raise ArtefactError(f"{home.root} holds {held} made by the {kind} model {made_by[:12]}, which is no longer in "
                        f"{model_dir}; a "
                        f"new model cannot read them; restore that folder from a backup, or {instead} "
                        f"(then embed-corpus and build-index there)")


def _model_sha256(model_dir: Path) -> str | None:
    """The SHA-256 of the trained model in ``model_dir`` (None: none, or an unreadable model.json)."""
    if not (model_dir / SIDECAR_FILE).is_file():
        return None
    try:
        return read_card(model_dir).weights_sha256
    except ArtefactError:
        return None


def _default_store(home: Home) -> tuple[str | None, int]:
    """(model SHA-256, blocks) of the home's own SQLite store; (None, 0) when it has none."""
    if not home.db_path.is_file():
        return None, 0
    with MetadataStore(home.db_url()) as store:
        sha, _ = store.embedding_source()
        return sha, store.n_blocks()
