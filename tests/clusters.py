"""Running PostgreSQL's own programs for a cluster a test owns: as the account that owns
it (PostgreSQL refuses to run as root), and from a template made by one ``initdb``. Shared
by the plain servers (``pgserver.py``) and the engines' nodes (``engines.py``)."""

from __future__ import annotations

import atexit
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

Account = pwd.struct_passwd | None


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
