"""Tables of the metadata store (SQLAlchemy 2.x typed ORM). No FAISS here.

singers 1-n songs 1-n blocks; a block's primary key is its FAISS id. ``store_info`` is a single
row holding the schema version, the block-id counter and the model the embeddings came from.
Foreign keys cascade on delete, so removing a singer removes its songs and their blocks.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import BigInteger, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA_VERSION = 2  # bump on any table change; a store with another version is refused on open
# 2: failures keyed by file (one row per path: latest error, count, size and mtime), was one row per attempt.
# Older versions that ``MetadataStore`` upgrades in place on open (see store_migrate.py).
MIGRATABLE_VERSIONS = (1,)

SONG_STATUSES = ("embedded",)  # song row and all its block rows committed together

# 64-bit everywhere, but on SQLite an INTEGER PRIMARY KEY (the rowid alias: 64-bit and fastest).
Id64 = BigInteger().with_variant(Integer(), "sqlite")


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class StoreInfo(Base):
    """The one row (id = 1) describing the store itself."""

    __tablename__ = "store_info"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    schema_version: Mapped[int] = mapped_column(Integer)
    next_block_id: Mapped[int] = mapped_column(BigInteger)  # block ids are never reused, even after deletes
    model_sha256: Mapped[str | None] = mapped_column(String(64))  # weights that made the embeddings
    feature_config_json: Mapped[str | None] = mapped_column(Text)  # FeatureConfig of those embeddings
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class Singer(Base):
    __tablename__ = "singers"
    id: Mapped[int] = mapped_column(Id64, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # store_records.SINGER_KINDS: trained / enrolled
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class Song(Base):
    __tablename__ = "songs"
    __table_args__ = (Index("ix_songs_singer_split", "singer_id", "split"),)
    id: Mapped[int] = mapped_column(Id64, primary_key=True)
    singer_id: Mapped[int] = mapped_column(ForeignKey("singers.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(Text, index=True)  # as given by the reader (absolute)
    song_key: Mapped[str] = mapped_column(Text)  # Track.song_id, e.g. "aerosmith/Aerosmith/01-Make_It"
    content_sha256: Mapped[str] = mapped_column(String(64), unique=True)  # rerun skips by this
    duration_seconds: Mapped[float] = mapped_column(Float)
    dataset: Mapped[str] = mapped_column(String(32))
    album: Mapped[str | None] = mapped_column(Text)
    split: Mapped[str] = mapped_column(String(8))  # train / val / test
    status: Mapped[str] = mapped_column(String(16))  # one of SONG_STATUSES
    n_blocks: Mapped[int] = mapped_column(Integer)  # equals the song's rows in blocks
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class Block(Base):
    """One 1-s block: its FAISS id, song, time offset and the shard row holding its embedding."""

    __tablename__ = "blocks"
    __table_args__ = (UniqueConstraint("shard", "row", name="uq_blocks_shard_row"),)
    id: Mapped[int] = mapped_column(Id64, primary_key=True, autoincrement=False)  # = FAISS id
    song_id: Mapped[int] = mapped_column(ForeignKey("songs.id", ondelete="CASCADE"), index=True)
    offset_seconds: Mapped[float] = mapped_column(Float)
    shard: Mapped[int] = mapped_column(Integer)
    row: Mapped[int] = mapped_column(BigInteger)


class IndexBuild(Base):
    """History of FAISS indexes built from this store (the manifest names the current one)."""

    __tablename__ = "indexes"
    id: Mapped[int] = mapped_column(Id64, primary_key=True)
    index_type: Mapped[str] = mapped_column(String(16))
    params_json: Mapped[str] = mapped_column(Text)
    n_vectors: Mapped[int] = mapped_column(BigInteger)
    dim: Mapped[int] = mapped_column(Integer)
    model_sha256: Mapped[str] = mapped_column(String(64))
    file_name: Mapped[str] = mapped_column(Text)
    file_sha256: Mapped[str] = mapped_column(String(64))
    ids_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class Failure(Base):
    """A file that could not be embedded: one row per path, updated on every new attempt.

    A rerun skips a path whose size and mtime are unchanged since it failed (unless asked to
    retry); a file that is later stored loses its row.
    """

    __tablename__ = "failed_files"
    id: Mapped[int] = mapped_column(Id64, primary_key=True)
    path: Mapped[str] = mapped_column(Text, unique=True)  # absolute, as the run saw it
    stage: Mapped[str] = mapped_column(String(32))
    error: Mapped[str] = mapped_column(Text)  # the latest one-line error
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)  # of the file when it last failed
    mtime_ns: Mapped[int | None] = mapped_column(BigInteger)
    n_failures: Mapped[int] = mapped_column(Integer, default=1)  # attempts that failed
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)  # first failure
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)  # latest failure
