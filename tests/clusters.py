"""A cluster a test owns, and running PostgreSQL's own programs for it: as the account
that owns it (PostgreSQL refuses to run as root), and from a template made by one
``initdb``. Shared by the plain servers (``pgserver.py``) and the engines' nodes
(``engines.py``), which differ in their binaries and settings, not in how they stop, die
and go away."""

from __future__ import annotations

import abc
import atexit
import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Literal, Protocol, TypeVar

from helpers import alive, free_port, wait_until

Account = pwd.struct_passwd | None
StopMode = Literal["smart", "fast", "immediate"]


class Startable(Protocol):
    """A server a test starts and removes: a cluster, a Citus cluster, a PgBouncer."""

    def start(self) -> None: ...

    def destroy(self) -> None: ...


_Server = TypeVar("_Server", bound=Startable)


def run_as(account: Account, *command: str, log: Path | None = None) -> None:
    """Run ``command`` as ``account`` (as we are, for None); on failure the error carries
    its output and the tail of the server's ``log``."""
    user = account.pw_uid if account else None
    group = account.pw_gid if account else None
    # Output goes to a file: a pipe would never close, the server inherits it.
    # The server's own libpq (Citus' connections between nodes) reads $HOME/.postgresql
    # and PG* variables: ours would point it at root's files, or elsewhere.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    if account is not None:
        env.update(HOME=account.pw_dir, USER=account.pw_name, LOGNAME=account.pw_name)
    with tempfile.TemporaryFile("w+") as out:
        result = subprocess.run(
            command, user=user, group=group, env=env, stdout=out, stderr=out, check=False, cwd="/"
        )
        if result.returncode != 0:
            out.seek(0)
            tail = log.read_text(errors="replace")[-4000:] if log and log.exists() else ""
            raise subprocess.CalledProcessError(
                result.returncode, command, output=out.read() + tail
            )


def chown_tree(path: Path, account: Account) -> None:
    """Give ``path`` and everything under it to ``account`` (nothing to do for None)."""
    if account is None:
        return
    for root, dirs, files in os.walk(path):
        for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
            os.chown(name, account.pw_uid, account.pw_gid, follow_symlinks=False)


def initdb_template(initdb: Path, account: Account, directory: Path, *options: str) -> Path:
    """A cluster made by ``initdb`` in ``directory`` (removed at exit), for clusters to
    copy: much faster than an initdb each. Trusts everyone; ``options`` add to initdb's."""
    chown_tree(directory, account)
    run_as(
        account,
        str(initdb),
        "-D",
        str(directory / "data"),
        "-U",
        "postgres",
        "--auth=trust",
        "--encoding=UTF8",
        "--no-sync",
        *options,
    )
    atexit.register(shutil.rmtree, directory, True)
    return directory / "data"


@contextlib.contextmanager
def started(server: _Server) -> Iterator[_Server]:
    """``server`` started, and destroyed whatever the test did (a start that failed too,
    which may leave a postmaster or a directory behind)."""
    try:
        server.start()
        yield server
    finally:
        server.destroy()


def postmaster_pid(data: Path) -> int | None:
    """The pid in a data directory's ``postmaster.pid``; None without one."""
    try:
        return int((data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def kill_postmaster(data: Path) -> None:
    """SIGKILL a server's postmaster, then its children, as a crash would leave them, and
    wait until all are gone."""
    pid = postmaster_pid(data)
    if pid is None:
        return
    children = subprocess.run(
        ["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False
    ).stdout.split()
    os.kill(pid, signal.SIGKILL)
    for child in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(child), signal.SIGKILL)
    wait_until(lambda: not alive(pid), "postmaster to die")
    for child in children:
        wait_until(lambda c=int(child): not alive(c), "backends to die")  # type: ignore[misc]
    (data / "postmaster.pid").unlink(missing_ok=True)


class Cluster(abc.ABC):
    """A cluster in a directory of its own (``data``, ``server.log``) on a free loopback
    port, run by ``bindir``'s pg_ctl as ``account``. A subclass fills ``data`` and starts
    it; stopping, killing and removing it are the same for every kind."""

    def __init__(
        self, bindir: Path, account: Account, prefix: str, root: Path | None = None
    ) -> None:
        self.bindir = bindir
        self.account = account
        self.directory = Path(tempfile.mkdtemp(prefix=prefix, dir=root))
        self.data = self.directory / "data"
        self.log = self.directory / "server.log"
        self.port = free_port()
        self.dsn = f"postgresql://postgres@127.0.0.1:{self.port}/postgres?sslmode=disable"

    def stop(self, mode: StopMode = "fast") -> None:
        """pg_ctl stop -m fast|immediate|smart."""
        self._pg_ctl("-w", "-t", "60", "-m", mode, "stop")

    def restart(self, mode: StopMode = "fast") -> None:
        self.stop(mode)
        self.start()

    @abc.abstractmethod
    def start(self) -> None: ...

    def kill(self) -> None:
        """SIGKILL the postmaster, then its children, as a crash would leave them."""
        kill_postmaster(self.data)

    def postmaster_pid(self) -> int | None:
        return postmaster_pid(self.data)

    @property
    def running(self) -> bool:
        pid = self.postmaster_pid()
        return pid is not None and alive(pid)

    def destroy(self) -> None:
        if self.postmaster_pid() is not None:
            try:
                self.stop("immediate")
            except subprocess.CalledProcessError:
                self.kill()
        shutil.rmtree(self.directory, ignore_errors=True)

    def _pg_ctl(self, *args: str) -> None:
        run_as(self.account, str(self.bindir / "pg_ctl"), "-D", str(self.data), *args, log=self.log)
