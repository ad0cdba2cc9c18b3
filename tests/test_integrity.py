"""Every artefact is verified where it is used, and `info --check` fails whenever `query` would.

Each case tampers with one part of a private copy of the session's ready home (real SQLite,
real FAISS, real shards) and checks that opening it for queries is refused with an ArtefactError
naming the part, that `info --check` reports a problem, and for shard rows that build-index
refuses to index them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from singerid.errors import ArtefactError
from singerid.index.home import Home
from singerid.index.shards import HEADER, ShardSet, shard_path
from singerid.index.store import MetadataStore
from singerid.pipeline.build_index import build_index
from singerid.pipeline.common import load_embedder
from singerid.pipeline.manage import info
from singerid.pipeline.query import QueryEngine


def problems(home: Home) -> list[str]:
    return info(home, check=True)["problems"]


def refused(home: Home) -> str:
    with pytest.raises(ArtefactError) as caught:
        QueryEngine.open(home).close()
    return str(caught.value)


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))


@pytest.fixture
def home(ready_home, tmp_path) -> Home:
    copy = ready_home.copy(tmp_path / "h")
    assert problems(copy) == []
    return copy


def test_a_flipped_byte_in_the_index_body_is_refused_by_query_and_found_by_info_check(home):
    path = home.index_path(home.read_manifest().index)
    flip_byte(path, path.stat().st_size // 2)  # inside the vectors: FAISS would read it without complaint
    assert "does not match its SHA-256 in the manifest" in refused(home)
    assert any("does not match its SHA-256" in p for p in problems(home))


def test_an_edited_singer_list_is_refused_instead_of_relabelling_answers(home):
    card = home.model_dir("attcrnn") / "model.json"
    data = json.loads(card.read_text())
    text = json.dumps(data)
    first = data["singers"][0]
    card.write_text(text.replace(json.dumps(first), json.dumps(first + "-renamed"), 1))
    with pytest.raises(ArtefactError, match="was changed after the home's vectors were embedded"):
        load_embedder(home, "attcrnn")
    assert "was changed after the home's vectors were embedded" in refused(home)
    assert any("model.json was changed" in p for p in problems(home))


def test_a_changed_threshold_file_is_refused(home):
    entry = home.read_manifest().index
    path = home.calibration_path(entry)
    data = json.loads(path.read_text())
    data["min_similarity"] = -1.0  # would accept every unknown singer
    path.write_text(json.dumps(data))
    assert "does not match its SHA-256 in the manifest" in refused(home)
    assert any(str(path) in p for p in problems(home))


@pytest.mark.parametrize("damage", ["flip", "nan", "truncate"])
def test_damaged_shard_rows_are_found_by_info_check_and_refused_by_build_index(home, damage):
    path = shard_path(home.shards_dir, 0)
    row_bytes = 4 * home.read_manifest().model.embedding_dim
    if damage == "flip":
        flip_byte(path, HEADER.size + 5 * row_bytes + 2)
    elif damage == "nan":
        data = bytearray(path.read_bytes())
        data[HEADER.size + 5 * row_bytes:HEADER.size + 5 * row_bytes + 4] = np.float32(np.nan).tobytes()
        path.write_bytes(bytes(data))
    else:
        with open(path, "r+b") as fh:
            fh.truncate(path.stat().st_size - row_bytes - 3)
    found = problems(home)
    assert len(found) == 1 and found[0].startswith("shard 0 (") and "restore the home from a backup" in found[0]
    with pytest.raises(ArtefactError, match=r"^shard 0 "):
        build_index(home)


def test_row_checksums_are_truncated_with_uncommitted_rows(home):
    """A writer killed between appending rows and committing them leaves no stray checksums."""
    dim = home.read_manifest().model.embedding_dim
    with MetadataStore(home.db_url()) as store:
        committed = store.shard_row_counts()
    with ShardSet.open_writer(home.shards_dir, dim, committed_rows=committed) as shards:
        shards.append(np.eye(dim, dtype=np.float32)[:3])  # appended, never committed
    with ShardSet.open_writer(home.shards_dir, dim, committed_rows=committed) as shards:
        assert shards.repaired == {0: 3}
        assert shards.verify(committed) == []
    assert (home.shards_dir / "shard-000000.crc").stat().st_size == 4 * committed[0]


def test_the_database_integrity_check_runs_in_info_check(home):
    with MetadataStore(home.db_url()) as store:
        assert store.integrity_check() == []
    db = home.db_path
    with MetadataStore(home.db_url()) as store:  # checkpoint the WAL so that the pages are in the file
        with store.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    page = 4096
    data = bytearray(db.read_bytes())
    last = len(data) // page - 1  # a page of the blocks index, away from the schema on page 1
    data[last * page + 8:last * page + 400] = b"\x17" * 392
    db.write_bytes(bytes(data))
    found = problems(home)
    assert found and all("metadata store" in p for p in found)


@pytest.mark.parametrize("field, value, message", [
    ("model.kind", "../../../tmp", "model kind '../../../tmp' is not one of crnn, attcrnn"),
    ("index.file", "../../outside.faiss", "index file name '../../outside.faiss' is not a plain file name"),
    ("index.file", "/etc/passwd.faiss", "index file name '/etc/passwd.faiss' is not a plain file name"),
    ("index.backend_file", "..", "index file name '..' is not a plain file name"),
    ("index.calibration_file", "../calibration.json", "is not a plain file name inside the home"),
])
def test_names_in_the_manifest_cannot_leave_the_home(home, field, value, message):
    data = json.loads(home.manifest_path.read_text())
    part, key = field.split(".")
    data[part][key] = value
    home.manifest_path.write_text(json.dumps(data))
    with pytest.raises(ArtefactError, match="manifest.json: ") as caught:
        home.read_manifest()
    assert message in str(caught.value)
    with pytest.raises(ArtefactError):
        QueryEngine.open(home)


def test_info_check_fails_whenever_query_would(home, tmp_path, ready_home):
    """Each tampering that makes query refuse makes info --check report a problem too."""
    cases = {
        "index body": lambda h: flip_byte(h.index_path(h.read_manifest().index), 200),
        "index size": lambda h: h.index_path(h.read_manifest().index).open("ab").write(b"x"),
        "index missing": lambda h: h.index_path(h.read_manifest().index).unlink(),
        "threshold missing": lambda h: h.calibration_path(h.read_manifest().index).unlink(),
        "rows deleted": lambda h: _delete_some_blocks(h),
        "model.json edited": lambda h: _rename_singer(h),
    }
    for name, tamper in cases.items():
        copy = ready_home.copy(tmp_path / name.replace(" ", "-"))
        tamper(copy)
        with pytest.raises(ArtefactError):
            QueryEngine.open(copy).close()
        assert problems(copy), name


def _delete_some_blocks(home: Home) -> None:
    import sqlite3

    with sqlite3.connect(home.db_path) as conn:
        conn.execute("DELETE FROM blocks WHERE id IN (SELECT id FROM blocks ORDER BY id LIMIT 3)")


def _rename_singer(home: Home) -> None:
    card = home.model_dir("attcrnn") / "model.json"
    data = json.loads(card.read_text())
    first = data["singers"][0]
    card.write_text(json.dumps(data).replace(json.dumps(first), json.dumps(first + "x"), 1))
