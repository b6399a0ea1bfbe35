"""Citus and TimescaleDB for tests: clusters a test starts, stops, restarts and kills.

Each node is a Debian PostgreSQL 15 cluster (``/usr/lib/postgresql/15/bin``) on a free
loopback port, run as the ``postgres`` user when the tests run as root (PostgreSQL
refuses to run as root). ``initdb`` runs once per session; every node starts from a copy
of that cluster, with fsync off and the engine preloaded.

The extensions are not Debian packages: ``tests/system-packages`` installs them from the
engines folder (``$PGLOG_ENGINES``, else ``../shared/engines``). Without them the engine
fixtures skip, saying what is missing, or fail when ``$CI`` is set: a CI run that does
not test the engines must not pass as if it had.

The fixtures: ``citus`` and ``timescale`` are one per session, for tests that make
tables of their own and leave the servers running; ``own_citus`` and ``own_timescale``
are a test's own, to stop, kill and restart at will.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

import psycopg
import pytest
from clusters import Cluster, chown_tree, initdb_template, started
from psycopg import sql

PGBIN = Path(os.environ.get("PGLOG_PGBIN", "/usr/lib/postgresql/15/bin"))
PGLIB = PGBIN.parent / "lib"
PGSHARE = Path("/usr/share/postgresql") / PGBIN.parent.name
#: The extensions were compiled against 15.20's headers and don't load in older servers.
MIN_SERVER = (15, 20)
#: What each engine needs on disk: (library, control file).
ENGINES = {
    "citus": ("citus.so", "citus.control"),
    "timescaledb": ("timescaledb.so", "timescaledb.control"),
}
Engine = Literal["citus", "timescaledb"]

#: Every node, whatever the engine: fast to start, nothing to keep.
BASE_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "unix_socket_directories": "''",
    "fsync": "off",  # a killed postmaster loses nothing with fsync off; only an OS crash would
    "full_page_writes": "off",
    "max_connections": "100",
    "shared_buffers": "64MB",
    "log_min_messages": "warning",
    "log_line_prefix": "'%m [%p] %e '",  # the SQLSTATE of every logged error
}
CITUS_SETTINGS = {
    "shared_preload_libraries": "'citus'",
    "citus.enable_statistics_collection": "off",  # the build has no libcurl anyway
    "max_prepared_transactions": "100",  # two-phase commit of multi-shard transactions
    "citus.shard_count": "8",  # the default is 32; 8 makes tables and indexes faster to make
}
TIMESCALE_SETTINGS = {
    "shared_preload_libraries": "'timescaledb'",
    "timescaledb.telemetry_level": "off",
    "max_worker_processes": "16",
    "timescaledb.max_background_workers": "8",
}


# -- are they there -------------------------------------------------------------------------


def server_version() -> tuple[int, int] | None:
    """The (major, minor) of ``PGBIN/postgres``, or None without one."""
    try:
        out = subprocess.run(
            [str(PGBIN / "postgres"), "--version"], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    match = re.search(r"\(PostgreSQL\) (\d+)\.(\d+)", out)
    return (int(match.group(1)), int(match.group(2))) if match else None


def engines_missing(*engines: Engine) -> str | None:
    """Why ``engines`` (default: both) can't run here, in a sentence; None when they can."""
    version = server_version()
    if version is None:
        problem = f"no PostgreSQL server at {PGBIN} (Debian's postgresql-15)"
    elif version < MIN_SERVER:
        problem = (
            f"PostgreSQL {version[0]}.{version[1]} at {PGBIN} is older than"
            f" {MIN_SERVER[0]}.{MIN_SERVER[1]}, which the extensions need"
        )
    else:
        absent = [
            str(path)
            for engine in engines or ENGINES
            for path in (PGLIB / ENGINES[engine][0], PGSHARE / "extension" / ENGINES[engine][1])
            if not path.exists()
        ]
        if not absent:
            return None
        problem = f"not installed: {', '.join(absent)}"
    return f"{problem}; tests/system-packages installs them (as root)"


def engines_installed(*engines: Engine) -> bool:
    return engines_missing(*engines) is None


def require(*engines: Engine) -> None:
    """Go on if ``engines`` can run; else skip saying why, or fail when $CI is set."""
    reason = engines_missing(*engines)
    if reason is None:
        return
    names = " and ".join(engines or ENGINES)
    if os.environ.get("CI"):
        pytest.fail(f"CI is set and {names} can't run: {reason}", pytrace=False)
    pytest.skip(f"{names} can't run: {reason}")


# -- one node ----------------------------------------------------------------------------------


class Node(Cluster):
    """One PostgreSQL 15 cluster in its own directory, listening on 127.0.0.1:<port>."""

    _template: Path | None = None

    def __init__(self, name: str, settings: Mapping[str, str], root: Path | None = None) -> None:
        super().__init__(PGBIN, _account(), f"pglog-{name}-", root)
        self.name = name
        shutil.copytree(self._template_cluster(), self.data, symlinks=True)
        self.data.chmod(0o700)
        conf = {**BASE_SETTINGS, "port": str(self.port), **settings}
        with (self.data / "postgresql.conf").open("a") as out:
            out.write("\n# tests/engines.py\n")
            out.writelines(f"{key} = {value}\n" for key, value in conf.items())
        chown_tree(self.directory, self.account)

    def __repr__(self) -> str:
        return f"<Node {self.name} 127.0.0.1:{self.port}>"

    def start(self) -> None:
        self._pg_ctl("-w", "-t", "60", "-l", str(self.log), "start")

    # -- using it ----------------------------------------------------------------------------

    def connect(self, *, autocommit: bool = True, **options: Any) -> psycopg.Connection[Any]:
        return psycopg.connect(self.dsn, autocommit=autocommit, **options)

    def execute(self, statement: str | sql.Composable, params: Any = None) -> list[Any]:
        """One statement on a connection of its own; its rows (none for a command)."""
        with self.connect() as conn:
            cur = conn.execute(statement, params)  # type: ignore[arg-type]
            return cur.fetchall() if cur.description else []

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    # -- plumbing ----------------------------------------------------------------------------

    def _template_cluster(self) -> Path:
        """initdb once per process; every node copies it (much faster than its own initdb)."""
        if Node._template is None:
            template = Path(tempfile.mkdtemp(prefix=f"pglog-engines-template-{os.getpid()}-"))
            Node._template = initdb_template(
                PGBIN / "initdb", self.account, template, "--locale=C.UTF-8", "--no-instructions"
            )
        return Node._template


# -- Citus ---------------------------------------------------------------------------------------


class CitusCluster:
    """A Citus coordinator and ``workers`` workers on loopback, all on PostgreSQL 15.

    ``settings`` are added to every node's (and override CITUS_SETTINGS); the coordinator
    is also registered as a node of the cluster (holding no shards), as Citus wants for
    reference tables and for queries that need it.
    """

    def __init__(self, workers: int = 2, settings: Mapping[str, str] | None = None) -> None:
        conf = {**CITUS_SETTINGS, **(settings or {})}
        self.root = Path(tempfile.mkdtemp(prefix="pglog-citus-"))
        chown_tree(self.root, _account())
        names = ["coordinator"] + [f"worker{i}" for i in range(workers)]
        self.coordinator, *self.workers = (Node(name, conf, self.root) for name in names)
        #: The port the cluster knows each worker by (its own, unless ``start`` was told).
        self.registered = [worker.port for worker in self.workers]

    def __repr__(self) -> str:
        return f"<CitusCluster coordinator {self.port}, workers {[w.port for w in self.workers]}>"

    @property
    def nodes(self) -> list[Node]:
        return [self.coordinator, *self.workers]

    @property
    def dsn(self) -> str:
        return self.coordinator.dsn

    @property
    def port(self) -> int:
        return self.coordinator.port

    def start(self, via: Mapping[int, int] | None = None) -> None:
        """Start every node, create the extension on each, register the workers.

        ``via`` maps a worker's index to the port the cluster is to reach it by (a proxy in
        front of it, to break or hold the coordinator's connections to it)."""
        _parallel(Node.start, self.nodes)
        _parallel(lambda node: node.execute("CREATE EXTENSION IF NOT EXISTS citus"), self.nodes)
        with self.coordinator.connect() as conn:
            conn.execute("SELECT citus_set_coordinator_host('127.0.0.1', %s)", (self.port,))
            self.registered = [(via or {}).get(i, w.port) for i, w in enumerate(self.workers)]
            for port in self.registered:
                conn.execute("SELECT citus_add_node('127.0.0.1', %s)", (port,))

    def destroy(self) -> None:
        _parallel(Node.destroy, self.nodes)
        shutil.rmtree(self.root, ignore_errors=True)

    def connect(self, **options: Any) -> psycopg.Connection[Any]:
        """A connection to the coordinator (autocommit unless told otherwise)."""
        return self.coordinator.connect(**options)

    def connect_worker(self, index: int, **options: Any) -> psycopg.Connection[Any]:
        """A connection to worker ``index`` that sees its shard tables (Citus hides them)."""
        conn = self.workers[index].connect(**options)
        conn.execute("SET citus.override_table_visibility = off")
        return conn

    def shards(self, table: str) -> list[tuple[str, int]]:
        """(shard table, port of the node holding it) for every shard of ``table``."""
        with self.connect() as conn:
            found = conn.execute(
                "SELECT shard_name::text, nodeport FROM citus_shards"
                " WHERE table_name = %s::regclass ORDER BY shardid",
                (table,),
            ).fetchall()
        return [(str(name), int(port)) for name, port in found]

    def shard_rows(self, table: str) -> list[int]:
        """Rows of ``table`` on each worker, in the order of ``workers``: counted on the
        workers themselves, shard table by shard table."""
        shards = self.shards(table)
        counts = []
        for index, known_as in enumerate(self.registered):
            total = 0
            with self.connect_worker(index) as conn:
                for name, port in shards:
                    if port == known_as:
                        schema, _, relation = name.rpartition(".")
                        ident = sql.Identifier(*(schema, relation) if schema else (relation,))
                        row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(ident))
                        total += int(row.fetchone()[0])  # type: ignore[index]
            counts.append(total)
        return counts

    def worker(self, index: int) -> Node:
        return self.workers[index]


# -- TimescaleDB ---------------------------------------------------------------------------------


class TimescaleServer(Node):
    """A single PostgreSQL 15 with TimescaleDB preloaded and created in ``postgres``."""

    def __init__(self, settings: Mapping[str, str] | None = None) -> None:
        super().__init__("timescale", {**TIMESCALE_SETTINGS, **(settings or {})})
        self._created = False

    def start(self) -> None:
        super().start()
        if not self._created:
            self.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            self._created = True


# -- fixtures ------------------------------------------------------------------------------------


#: What the fixtures start: a cluster, or one server.
_Started = TypeVar("_Started", CitusCluster, TimescaleServer)


@contextlib.contextmanager
def running(engine: Engine, make: Callable[[], _Started]) -> Iterator[_Started]:
    """An engine's servers, started, and destroyed whatever the test did; a skip (or, in
    CI, a failure) without the engine."""
    require(engine)
    with started(make()) as servers:
        yield servers


@pytest.fixture(scope="session")
def citus() -> Iterator[CitusCluster]:
    """A Citus cluster for the whole session: make your own tables, don't restart nodes."""
    with running("citus", CitusCluster) as cluster:
        yield cluster


@pytest.fixture
def own_citus() -> Iterator[CitusCluster]:
    """A Citus cluster of this test's own, to stop, kill and restart nodes of at will."""
    with running("citus", CitusCluster) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def timescale() -> Iterator[TimescaleServer]:
    """A TimescaleDB server for the whole session: make your own tables, don't restart it."""
    with running("timescaledb", TimescaleServer) as server:
        yield server


@pytest.fixture
def own_timescale() -> Iterator[TimescaleServer]:
    """A TimescaleDB server of this test's own, to stop, kill and restart at will."""
    with running("timescaledb", TimescaleServer) as server:
        yield server


# -- plumbing ------------------------------------------------------------------------------------


def _account() -> pwd.struct_passwd | None:
    """The user to run PostgreSQL as: None when not root (then it runs as us)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")  # Debian's postgresql-15 made it
    except KeyError:
        raise RuntimeError("running as root, but there is no postgres user to run as") from None


def _parallel(action: Callable[[Node], object], nodes: list[Node]) -> None:
    """``action`` on every node at once (starting three nodes one by one takes three times
    as long); the first error, if any, raised after all have finished."""
    with concurrent.futures.ThreadPoolExecutor(len(nodes)) as pool:
        for future in [pool.submit(action, node) for node in nodes]:
            future.result()
