"""The metadata store's behaviour tests, rerun against a real PostgreSQL server.

The fixture starts its own throw-away server (initdb + pg_ctl from /usr/lib/postgresql/*/bin),
listening on 127.0.0.1 only, on a free port, with durability off for speed; each test gets a fresh
database. PostgreSQL refuses to run as root, so under root the server runs as the unprivileged
user ``nobody`` with its data directory in a temporary directory owned by that user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from singerid.errors import ArtefactError
from singerid.index.store import MetadataStore

# The backend-neutral store tests (everything that takes ``store_url``), collected here again so
# that they run with this module's ``store_url`` fixture.
from test_store import (  # noqa: F401
    store,
    test_a_failed_insert_rolls_back_song_singer_and_ids,
    test_bad_song_values_are_parameter_errors,
    test_block_ids_are_never_reused_after_deletes,
    test_bulk_insert_is_fast_enough_for_a_real_corpus,
    test_counts_per_singer_and_split_and_block_labels,
    test_embeddings_are_bound_to_one_model,
    test_failures_are_recorded_and_the_run_goes_on,
    test_index_builds_are_recorded,
    test_lookup_takes_one_query_per_batch,
    test_removing_a_singer_cascades_to_songs_and_blocks,
    test_removing_songs_drops_singers_left_without_songs,
    test_rerun_skips_songs_already_stored_by_content_hash,
    test_schema_creation_is_idempotent,
    test_schema_version_mismatch_is_refused,
    test_singer_kind_is_kept_and_conflicts_are_refused,
    test_song_and_its_blocks_are_stored_together,
)

PG_ROOT = Path("/usr/lib/postgresql")
SERVER_USER = "nobody"  # exists on every Linux; only used when the tests run as root
START_TIMEOUT_S = 30


def find_pg_bin() -> Path | None:
    """The newest PostgreSQL bin directory holding initdb and pg_ctl, if any."""
    candidates = sorted(PG_ROOT.glob("*/bin"), key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    for directory in reversed(candidates):
        if (directory / "initdb").is_file() and (directory / "pg_ctl").is_file():
            return directory
    return None


def traversable_tmp() -> str:
    """A temporary-files directory the unprivileged server user can enter ($TMPDIR may be root-only)."""
    default = tempfile.gettempdir()
    return default if os.stat(default).st_mode & 0o001 else "/tmp"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """A private PostgreSQL cluster in a temporary directory."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.port = free_port()
        self.base = Path(tempfile.mkdtemp(prefix="singerid-pg-", dir=traversable_tmp()))
        self.data = self.base / "data"
        self.log = self.base / "server.log"
        self.run_as: dict = {}
        if os.geteuid() == 0:
            user = pwd.getpwnam(SERVER_USER)
            os.chown(self.base, user.pw_uid, user.pw_gid)
            self.run_as = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}

    def _run(self, *args: str) -> None:
        result = subprocess.run([str(a) for a in args], cwd=self.base, capture_output=True, text=True,
                                timeout=START_TIMEOUT_S, env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"}, **self.run_as)
        if result.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"{args[0]} failed ({result.returncode}): {result.stderr.strip()} {log[-2000:]}")

    def start(self) -> None:
        self._run(self.bin_dir / "initdb", "-D", self.data, "-U", "singerid", "-A", "trust", "-E", "UTF8",
                  "--no-locale", "--no-sync")
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories='' "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=50")
        self._run(self.bin_dir / "pg_ctl", "-D", self.data, "-l", self.log, "-o", options, "-w",
                  "-t", str(START_TIMEOUT_S), "start")

    def stop(self) -> None:
        try:
            if self.data.exists():
                self._run(self.bin_dir / "pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://singerid@127.0.0.1:{self.port}/{database}"


@pytest.fixture(scope="module")
def pg_server():
    psycopg = pytest.importorskip("psycopg", reason="psycopg 3 is not installed (pip install 'singerid[postgres]')")
    bin_dir = find_pg_bin()
    if bin_dir is None:
        pytest.skip(f"PostgreSQL server binaries (initdb, pg_ctl) not found under {PG_ROOT}/*/bin")
    server = PostgresServer(bin_dir)
    try:
        server.start()
        yield server, psycopg
    finally:
        server.stop()


@pytest.fixture
def store_url(pg_server):
    """A fresh, empty database on the private server for each test."""
    server, psycopg = pg_server
    name = f"t_{uuid.uuid4().hex[:16]}"
    admin = f"host=127.0.0.1 port={server.port} user=singerid dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
    yield server.url(name)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("DROP DATABASE {} WITH (FORCE)").format(psycopg.sql.Identifier(name)))


def test_the_server_is_postgresql_on_loopback(store_url):
    with MetadataStore(store_url) as store:
        assert store.engine.dialect.name == "postgresql"
        assert store.url.startswith("postgresql+psycopg://singerid@127.0.0.1:")


def test_an_unreachable_server_is_a_clear_error():
    pytest.importorskip("psycopg", reason="psycopg 3 is not installed")
    url = f"postgresql+psycopg://singerid:secret@127.0.0.1:{free_port()}/nowhere"
    with pytest.raises(ArtefactError, match=r"cannot open metadata store postgresql\+psycopg://singerid:\*\*\*@127"):
        MetadataStore(url)  # and the password is not printed
