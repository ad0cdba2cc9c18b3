"""The metadata store: which singer, song and time offset every FAISS id stands for. No FAISS here.

``MetadataStore(url)`` works the same on ``sqlite:///path`` (WAL mode, foreign keys on) and any
other SQLAlchemy URL such as ``postgresql+psycopg://user@host/db``. A song and all its block rows
are committed in one transaction; block ids come from a counter in ``store_info`` and are never
reused. Neighbour look-ups take one query per batch of ids. Statements are built with the
SQLAlchemy expression language only (bound parameters, no SQL text from input).
"""

from __future__ import annotations

import itertools
import json
import logging
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone

import numpy as np
from sqlalchemy import Engine, create_engine, delete, event, func, insert, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, NoSuchModuleError
from sqlalchemy.orm import Session

from singerid.config import FeatureConfig
from singerid.errors import ArtefactError, ParameterError
from singerid.index.schema import (
    MIGRATABLE_VERSIONS, SCHEMA_VERSION, Base, Block, Failure, IndexBuild, Singer, Song, StoreInfo,
)
from singerid.index.store_migrate import migrate
from singerid.index.store_records import (
    BlockInfo, BlockLabels, BlockLocations, FailureRecord, IndexBuildRecord, NewSong, SingerCount, SongRecord,
    StoreCounts,
)
from singerid.records import SPLITS

log = logging.getLogger(__name__)

LOOKUP_CHUNK_IDS = 10_000  # ids per IN (...) query: far below SQLite's 32,766 and PostgreSQL's 65,535 parameters
_SHA256 = re.compile(r"[0-9a-f]{64}")


class MetadataStore:
    """Singers, songs, blocks, index builds and failures in one SQL database."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        try:
            parsed = make_url(url)
            self._engine: Engine = create_engine(parsed, echo=echo)
        except (ArgumentError, NoSuchModuleError, ImportError, ValueError) as exc:
            raise ParameterError(f"cannot use database URL {url!r}: {_first_line(exc)}") from exc
        self.url = parsed.render_as_string(hide_password=True)
        if parsed.get_backend_name() == "sqlite":
            event.listen(self._engine, "connect", _sqlite_pragmas)
        self._open()

    def _open(self) -> None:
        try:
            Base.metadata.create_all(self._engine)  # checks first: idempotent
            found = self._schema_version()
        except DBAPIError as exc:  # locked, unreachable, or not a database at all (a damaged file)
            raise ArtefactError(f"cannot open metadata store {self.url}: {_first_line(exc.orig or exc)}"
                                f"{_damaged_advice(self.url, exc)}") from exc
        if found in MIGRATABLE_VERSIONS:
            try:
                found = migrate(self._engine, found)
            except DBAPIError as exc:
                raise ArtefactError(f"cannot upgrade metadata store {self.url} from schema version {found}: "
                                    f"{_first_line(exc.orig or exc)}; restore a backup or embed into a new home"
                                    ) from exc
        if found != SCHEMA_VERSION:
            raise ArtefactError(f"metadata store {self.url} has schema version {found}, this singerid needs "
                                f"{SCHEMA_VERSION}; embed the corpus into a new home (or a new --db)")

    def _schema_version(self) -> int:
        """The stored schema version; a new store gets the current one (a racing creator's row wins)."""
        try:
            with Session(self._engine) as s, s.begin():
                info = s.get(StoreInfo, 1)
                if info is not None:
                    return info.schema_version
                s.add(StoreInfo(id=1, schema_version=SCHEMA_VERSION, next_block_id=0))
            return SCHEMA_VERSION
        except IntegrityError:  # another process created the row between our read and insert
            with Session(self._engine) as s:
                return s.get(StoreInfo, 1).schema_version

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for instrumentation and tools; the store manages its own sessions)."""
        return self._engine

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> MetadataStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _session(self) -> Iterator[Session]:
        """One transaction: commit on success, roll back on any error.

        Database failures (lost connection, lock timeout, value the column cannot hold) become
        ArtefactError; IntegrityError is left to the caller, who knows which row was refused.
        """
        try:
            with Session(self._engine, expire_on_commit=False) as session, session.begin():
                yield session
        except IntegrityError:
            raise
        except DBAPIError as exc:
            raise ArtefactError(f"metadata store {self.url}: {_first_line(exc.orig or exc)}") from exc

    # --- model binding -------------------------------------------------------------------
    def bind_embeddings(self, model_sha256: str, feature_config: FeatureConfig) -> None:
        """Record which model and front end made the stored embeddings; refuse a different one later.

        Raises ArtefactError if the store already holds embeddings of another model or feature config.
        """
        _check_sha256(model_sha256, "model_sha256")
        features = json.dumps(feature_config.to_dict(), sort_keys=True)
        with self._session() as s:
            info = s.get(StoreInfo, 1, with_for_update=True)
            if info.model_sha256 is None:
                info.model_sha256, info.feature_config_json = model_sha256, features
            elif info.model_sha256 != model_sha256:
                raise ArtefactError(f"store {self.url} holds embeddings of model {info.model_sha256[:12]}, not "
                                    f"{model_sha256[:12]}; embed into a new home or restore that model")
            elif info.feature_config_json != features:
                raise ArtefactError(f"store {self.url} holds embeddings made with another feature config "
                                    f"({info.feature_config_json}); embed into a new home")

    def embedding_source(self) -> tuple[str | None, FeatureConfig | None]:
        """(model SHA-256, FeatureConfig) recorded by ``bind_embeddings``; (None, None) before."""
        with self._session() as s:
            info = s.get(StoreInfo, 1)
            features = info.feature_config_json
            return info.model_sha256, FeatureConfig.from_dict(json.loads(features)) if features else None

    # --- writing songs -------------------------------------------------------------------
    def add_song(self, song: NewSong, *, offsets_seconds: np.ndarray, shard: int, first_row: int) -> np.ndarray:
        """Insert ``song`` and one block per offset, in ONE transaction; returns the block ids int64 (n,).

        offsets_seconds: float (n,) block start times; block i lives in ``shard`` at row
        ``first_row + i``. Creates the singer (with ``song.singer_kind``) on first use. On any
        error nothing is written. Raises ParameterError for bad values, ArtefactError if the
        database rejects the rows (duplicate content hash, shard row already used).
        """
        offsets = np.asarray(offsets_seconds, dtype=np.float64)
        if offsets.ndim != 1 or not np.isfinite(offsets).all():
            raise ParameterError(f"{song.path}: offsets_seconds must be a finite 1-D array, got shape {offsets.shape}")
        if shard < 0 or first_row < 0:
            raise ParameterError(f"{song.path}: shard and first_row must be >= 0, got {shard}, {first_row}")
        try:
            with self._session() as s:
                singer_id = self._singer_id(s, song.singer, song.singer_kind)
                row = Song(singer_id=singer_id, path=db_path(song.path), song_key=db_path(song.song_key),
                           content_sha256=song.content_sha256, duration_seconds=float(song.duration_seconds),
                           dataset=song.dataset, album=song.album, split=song.split, status="embedded",
                           n_blocks=len(offsets))
                s.add(row)
                s.flush()
                ids = self._allocate_block_ids(s, len(offsets))
                if len(ids):
                    s.execute(insert(Block), [
                        {"id": int(i), "song_id": row.id, "offset_seconds": float(o), "shard": int(shard),
                         "row": int(first_row + j)}
                        for j, (i, o) in enumerate(zip(ids, offsets))])
        except IntegrityError as exc:
            raise ArtefactError(f"store rejected song {song.path!r}: {_first_line(exc.orig or exc)}") from exc
        return ids

    @staticmethod
    def _singer_id(s: Session, name: str, kind: str) -> int:
        singer = s.scalars(select(Singer).where(Singer.name == name)).one_or_none()
        if singer is None:
            singer = Singer(name=name, kind=kind)
            s.add(singer)
            s.flush()
        elif singer.kind != kind:
            raise ParameterError(f"singer {name!r} is already in the store as a {singer.kind} singer, not {kind}")
        return singer.id

    @staticmethod
    def _allocate_block_ids(s: Session, n: int) -> np.ndarray:
        table = StoreInfo.__table__
        stmt = (update(table).where(table.c.id == 1).values(next_block_id=table.c.next_block_id + n)
                .returning(table.c.next_block_id))
        end = int(s.execute(stmt).scalar_one())  # the row lock serialises concurrent writers
        return np.arange(end - n, end, dtype=np.int64)

    def record_failure(self, path: str, error: str, *, stage: str = "embed", size_bytes: int | None = None,
                       mtime_ns: int | None = None) -> None:
        """Record that ``path`` could not be processed (its own transaction; the run goes on).

        One row per path: a new failure of a recorded path updates its error, stage, size, mtime
        and time, and counts one more attempt.
        """
        values = {"stage": stage, "error": " ".join(str(error).split()), "size_bytes": size_bytes,
                  "mtime_ns": mtime_ns, "updated_at": datetime.now(timezone.utc)}
        for attempt in range(2):
            try:
                with self._session() as s:
                    moved = s.execute(update(Failure).where(Failure.path == db_path(path))
                                      .values(n_failures=Failure.n_failures + 1, **values)).rowcount
                    if not moved:
                        s.add(Failure(path=db_path(path), n_failures=1, created_at=values["updated_at"], **values))
                return
            except IntegrityError:  # another writer inserted this path between our update and insert
                if attempt:
                    raise

    def failed_before(self, path: str, *, size_bytes: int, mtime_ns: int) -> FailureRecord | None:
        """The recorded failure of ``path`` if the file is unchanged since (same size and mtime), else None."""
        with self._session() as s:
            f = s.scalars(select(Failure).where(Failure.path == db_path(path), Failure.size_bytes == size_bytes,
                                                Failure.mtime_ns == mtime_ns)).one_or_none()
            return _failure_record(f) if f is not None else None

    def clear_failure(self, path: str) -> None:
        """Forget the failure of ``path`` (it has been stored since)."""
        with self._session() as s:
            s.execute(delete(Failure).where(Failure.path == db_path(path)))

    def failures(self, *, since: datetime | None = None) -> list[FailureRecord]:
        """Recorded failures, one per path, in order of first failure (optionally only those that
        failed again at or after ``since``)."""
        stmt = select(Failure).order_by(Failure.id)
        if since is not None:
            stmt = stmt.where(Failure.updated_at >= since)
        with self._session() as s:
            return [_failure_record(f) for f in s.scalars(stmt)]

    # --- removing ------------------------------------------------------------------------
    def remove_singer(self, name: str) -> np.ndarray:
        """Delete a singer with its songs and blocks (FK cascade); returns the removed block ids int64."""
        with self._session() as s:
            singer_id = s.scalar(select(Singer.id).where(Singer.name == name))
            if singer_id is None:
                known = s.scalars(select(Singer.name).order_by(Singer.name).limit(10)).all()
                raise ParameterError(f"no singer named {name!r} in the store (known: {', '.join(known) or 'none'})")
            ids = _int_array(s.scalars(select(Block.id).join(Song).where(Song.singer_id == singer_id)))
            s.execute(delete(Singer).where(Singer.id == singer_id))
        return ids

    def remove_songs(self, paths: Sequence[str]) -> np.ndarray:
        """Delete songs by path with their blocks; singers left without songs go too. Returns block ids."""
        paths = [db_path(p) for p in paths]
        with self._session() as s:
            song_ids = _int_array(s.scalars(select(Song.id).where(Song.path.in_(paths))))
            found = set(s.scalars(select(Song.path).where(Song.path.in_(paths))))
            missing = [p for p in paths if p not in found]
            if missing:
                raise ParameterError(f"no song with path {missing[0]!r} in the store")
            ids = _int_array(s.scalars(select(Block.id).where(Block.song_id.in_(song_ids.tolist()))))
            s.execute(delete(Song).where(Song.id.in_(song_ids.tolist())))
            s.execute(delete(Singer).where(~select(Song.id).where(Song.singer_id == Singer.id).exists()))
        return ids

    # --- reading -------------------------------------------------------------------------
    def find_song(self, content_sha256: str) -> SongRecord | None:
        """The stored song with this content hash, or None (a rerun skips it)."""
        with self._session() as s:
            row = s.execute(_song_select().where(Song.content_sha256 == content_sha256)).one_or_none()
            return SongRecord(*row) if row else None

    def songs(self, *, singer: str | None = None, splits: Sequence[str] | None = None) -> list[SongRecord]:
        stmt = _song_select().order_by(Song.id)
        if singer is not None:
            stmt = stmt.where(Singer.name == singer)
        if splits is not None:
            stmt = stmt.where(Song.split.in_(_splits(splits)))
        with self._session() as s:
            return [SongRecord(*row) for row in s.execute(stmt)]

    def n_blocks(self, *, splits: Sequence[str] | None = None) -> int:
        stmt = _filter_splits(select(func.count(Block.id)), splits)
        with self._session() as s:
            return int(s.scalar(stmt))

    def block_ids(self, *, splits: Sequence[str] | None = None) -> np.ndarray:
        """int64 (n,) sorted ids of all (or the given splits') blocks."""
        stmt = _filter_splits(select(Block.id), splits).order_by(Block.id)
        with self._session() as s:
            return _int_array(s.scalars(stmt))

    def block_locations(self, *, splits: Sequence[str] | None = None) -> BlockLocations:
        """Where each block's embedding lives, ordered by id (for building the index from shards)."""
        stmt = _filter_splits(select(Block.id, Block.shard, Block.row), splits).order_by(Block.id)
        with self._session() as s:
            rows = _int_rows(s.execute(stmt).all(), 3)
        return BlockLocations(rows[:, 0].copy(), rows[:, 1].astype(np.int32), rows[:, 2].copy())

    def shard_row_counts(self) -> dict[int, int]:
        """For each shard the store references: 1 + the highest row it references."""
        with self._session() as s:
            return {int(shard): int(top) + 1 for shard, top in
                    s.execute(select(Block.shard, func.max(Block.row)).group_by(Block.shard))}

    def lookup_blocks(self, block_ids: np.ndarray) -> dict[int, BlockInfo]:
        """Singer, song, album and offset of each id, by id (-1 and unknown ids are left out).

        One SELECT per LOOKUP_CHUNK_IDS distinct ids (so one per query batch in practice; no N+1).
        """
        wanted = np.unique(np.asarray(block_ids, dtype=np.int64).ravel())
        wanted = wanted[wanted >= 0]
        found: dict[int, BlockInfo] = {}
        stmt = (select(Block.id, Block.song_id, Song.song_key, Song.path, Singer.name, Song.album, Block.offset_seconds)
                .join(Song, Block.song_id == Song.id).join(Singer, Song.singer_id == Singer.id))
        with self._session() as s:
            for start in range(0, len(wanted), LOOKUP_CHUNK_IDS):
                chunk = wanted[start:start + LOOKUP_CHUNK_IDS].tolist()
                for row in s.execute(stmt.where(Block.id.in_(chunk))):
                    found[int(row[0])] = BlockInfo(*row)
        return found

    def block_labels(self, *, splits: Sequence[str] | None = None) -> BlockLabels:
        """Every block id with its singer as a code (and its song id), for vectorised voting."""
        stmt = _filter_splits(select(Block.id, Song.singer_id, Block.song_id), splits).order_by(Block.id)
        with self._session() as s:
            rows = _int_rows(s.execute(stmt).all(), 3)
            singers = dict(s.execute(select(Singer.id, Singer.name)).all())
        names = tuple(sorted(singers.values()))
        code_of = {singer_id: names.index(name) for singer_id, name in singers.items()}
        lookup = np.full(max(singers, default=0) + 1, -1, dtype=np.int32)
        lookup[list(code_of)] = list(code_of.values())
        return BlockLabels(rows[:, 0].copy(), lookup[rows[:, 1]], names, rows[:, 2].copy())

    def counts(self) -> StoreCounts:
        """Songs and blocks per singer and split (from songs.n_blocks; one GROUP BY query)."""
        n_blocks = func.coalesce(func.sum(Song.n_blocks), 0)
        stmt = (select(Singer.name, Singer.kind, Song.split, func.count(Song.id), n_blocks)
                .join(Song, Song.singer_id == Singer.id, isouter=True)
                .group_by(Singer.name, Singer.kind, Song.split).order_by(Singer.name))
        per: dict[tuple[str, str], dict[str, tuple[int, int]]] = {}
        with self._session() as s:
            for name, kind, split, n_songs, n_blocks in s.execute(stmt):
                entry = per.setdefault((name, kind), {})
                if split is not None:
                    entry[split] = (int(n_songs), int(n_blocks))
        singers = tuple(SingerCount(name, kind, sum(v[0] for v in splits.values()), sum(v[1] for v in splits.values()),
                                    tuple(sorted((k, v[0], v[1]) for k, v in splits.items())))
                        for (name, kind), splits in per.items())
        return StoreCounts(len(singers), sum(c.n_songs for c in singers), sum(c.n_blocks for c in singers), singers)

    # --- index builds --------------------------------------------------------------------
    def record_index(self, record: IndexBuildRecord) -> None:
        """Append an index build to the history table."""
        with self._session() as s:
            s.add(IndexBuild(index_type=record.index_type, params_json=json.dumps(record.params, sort_keys=True),
                             n_vectors=record.n_vectors, dim=record.dim, model_sha256=record.model_sha256,
                             file_name=record.file_name, file_sha256=record.file_sha256, ids_sha256=record.ids_sha256))

    def integrity_check(self) -> list[str]:
        """Problems the database itself finds in its files (empty: none). SQLite: ``PRAGMA
        integrity_check`` (reads every page); other databases: every table is read end to end."""
        try:
            with self._engine.connect() as conn:
                if self._engine.dialect.name == "sqlite":
                    found = [str(r[0]) for r in conn.exec_driver_sql("PRAGMA integrity_check")]
                    return [] if found == ["ok"] else [f"metadata store {self.url}: {line}" for line in found[:5]]
                for table in Base.metadata.sorted_tables:
                    conn.execute(select(func.count()).select_from(table)).scalar()  # a full scan of each table
        except DBAPIError as exc:
            return [f"metadata store {self.url} is damaged: {_first_line(exc.orig or exc)}"]
        return []

    def index_history(self) -> list[IndexBuildRecord]:
        with self._session() as s:
            return [IndexBuildRecord(b.index_type, json.loads(b.params_json), b.n_vectors, b.dim, b.model_sha256,
                                     b.file_name, b.file_sha256, b.ids_sha256, b.created_at)
                    for b in s.scalars(select(IndexBuild).order_by(IndexBuild.id))]


def db_path(path: object) -> str:
    """A file name as the store keeps it: bytes that are not UTF-8 (held by Python as lone
    surrogates, which no database encoding accepts) become ``\\xNN`` escapes; all else unchanged."""
    text = str(path)
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _failure_record(f: Failure) -> FailureRecord:
    return FailureRecord(f.path, f.stage, f.error, f.created_at, f.n_failures, f.size_bytes, f.mtime_ns,
                         f.updated_at)


def _damaged_advice(url: str, exc: DBAPIError) -> str:
    """What to do when SQLite says the file is not a database (or is malformed)."""
    text = str(exc.orig or exc).lower()
    if url.startswith("sqlite") and ("not a database" in text or "malformed" in text or "corrupt" in text):
        return ("; the database file is damaged: restore it from a backup, or move it aside and embed the corpus "
                "again (embed-corpus, then build-index)")
    return ""


def _song_select():
    return (select(Song.id, Song.path, Song.song_key, Singer.name, Singer.kind, Song.content_sha256,
                   Song.duration_seconds, Song.dataset, Song.album, Song.split, Song.status, Song.n_blocks)
            .join(Singer, Song.singer_id == Singer.id))


def _filter_splits(stmt, splits: Sequence[str] | None):
    stmt = stmt.select_from(Block).join(Song, Block.song_id == Song.id)
    return stmt if splits is None else stmt.where(Song.split.in_(_splits(splits)))


def _splits(splits: Sequence[str]) -> list[str]:
    bad = [s for s in splits if s not in SPLITS]
    if bad:
        raise ParameterError(f"split must be one of {', '.join(SPLITS)}, got {bad[0]!r}")
    return list(splits)


def _check_sha256(value: str, what: str) -> None:
    if not isinstance(value, str) or not _SHA256.fullmatch(value):
        raise ParameterError(f"{what} must be 64 lowercase hex digits, got {value!r}")


def _int_array(values) -> np.ndarray:
    return np.fromiter(values, dtype=np.int64)


def _int_rows(rows: Sequence[Sequence[int]], width: int) -> np.ndarray:
    """int64 (n, width) from result rows, without a Python object per cell (4x faster than np.array)."""
    flat = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64, count=width * len(rows))
    return flat.reshape(-1, width)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """Per connection: enforce foreign keys (cascading deletes), WAL journal, wait on locks."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()

