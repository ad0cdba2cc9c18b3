"""In-place upgrades of older metadata stores, one function per version step. No FAISS here.

Each step runs in ONE transaction that first moves ``store_info.schema_version`` forward with
a conditional UPDATE: that row lock lets exactly one of several processes opening the same old
store do the work; the others find the new version. DDL is transactional on SQLite and
PostgreSQL alike, so a step that fails (or is killed) leaves the store as it was.
"""

from __future__ import annotations

import logging

from sqlalchemy import Connection, Engine, MetaData, Table, inspect, select, update

from singerid.index.schema import Failure, StoreInfo

log = logging.getLogger(__name__)


def migrate(engine: Engine, found: int) -> int:
    """Upgrade a store of schema version ``found`` step by step; returns the version reached."""
    version = found
    while version in _STEPS:
        with engine.begin() as conn:
            moved = conn.execute(update(StoreInfo).where(StoreInfo.id == 1, StoreInfo.schema_version == version)
                                 .values(schema_version=version + 1)).rowcount
            if moved:
                _STEPS[version](conn)
                log.info("metadata store upgraded from schema version %d to %d", version, version + 1)
        version = version + 1
    return version


def _v1_failures_by_file(conn: Connection) -> None:
    """v1 -> v2: the per-attempt ``failures`` table becomes ``failed_files``, one row per path
    (latest stage and error, the number of attempts, first and latest time)."""
    if not inspect(conn).has_table("failures"):
        return
    old = Table("failures", MetaData(), autoload_with=conn)
    merged: dict[str, dict] = {}
    for path, stage, error, created in conn.execute(
            select(old.c.path, old.c.stage, old.c.error, old.c.created_at).order_by(old.c.id)):
        row = merged.get(path)
        if row is None:
            merged[path] = {"path": path, "stage": stage, "error": error, "n_failures": 1,
                            "created_at": created, "updated_at": created}
        else:
            row.update(stage=stage, error=error, updated_at=created, n_failures=row["n_failures"] + 1)
    if merged:
        conn.execute(Failure.__table__.insert(), list(merged.values()))
    old.drop(conn)


_STEPS = {1: _v1_failures_by_file}  # from-version -> step
