"""Small disks that fill up for real: a tmpfs of a chosen size and inode count, and ways to
use up what is left of it.

Mounting needs root (the tests run as root here). Everything is real: ENOSPC comes
from the kernel when the blocks or the inodes run out, for root too (tmpfs keeps no
reserve).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

BLOCK = 4096


class Tmpfs:
    """A tmpfs mounted on a fresh directory: ``size`` as mount(8) takes it ("1m", "512k",
    or bytes), ``nr_inodes`` to limit the files it may hold (the root directory takes one).
    Unmounted by ``unmount()`` or at the end of a ``with`` block (lazily if still busy)."""

    def __init__(self, size: str | int = "1m", nr_inodes: int | None = None) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="pglog-tmpfs-"))
        options = f"size={size}" + (f",nr_inodes={nr_inodes}" if nr_inodes else "")
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(self.path)],
            check=True,
            capture_output=True,
        )
        self._mounted = True

    def unmount(self) -> None:
        if self._mounted:
            done = subprocess.run(["umount", str(self.path)], capture_output=True, check=False)
            if done.returncode != 0:  # a file still open (a writer not yet closed): detach
                subprocess.run(["umount", "-l", str(self.path)], capture_output=True, check=False)
            self._mounted = False
        with contextlib.suppress(OSError):
            self.path.rmdir()

    def __enter__(self) -> Tmpfs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.unmount()


def free_bytes(path: str | os.PathLike[str]) -> int:
    """Bytes still available on the file system holding ``path``."""
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def free_inodes(path: str | os.PathLike[str]) -> int:
    """Files that may still be created on the file system holding ``path``."""
    return os.statvfs(path).f_favail


def fill(path: str | os.PathLike[str], leave: int = 0) -> int:
    """Write the file ``path`` (created or grown) in blocks until the disk is full, or until
    only about ``leave`` bytes are left free. Returns the bytes it holds. Removing the file
    gives the space back."""
    written = 0
    block = b"\0" * BLOCK
    with open(path, "ab", buffering=0) as handle:
        while free_bytes(os.path.dirname(os.path.abspath(path))) > leave:
            try:
                written += handle.write(block) or 0
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                break
        with contextlib.suppress(OSError):
            os.fsync(handle.fileno())
    return written


def exhaust_inodes(directory: str | os.PathLike[str], leave: int = 0) -> Path:
    """Create empty files in a new subdirectory of ``directory`` until the file system has
    no inode left (or only ``leave``). Returns that subdirectory: removing it (``rmtree``)
    gives the inodes back."""
    holder = Path(directory) / f"inode-filler-{os.getpid()}"
    holder.mkdir()
    n = 0
    while free_inodes(directory) > leave:
        try:
            (holder / str(n)).touch()
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
            break
        n += 1
    return holder


def release(path: str | os.PathLike[str]) -> None:
    """Remove a filler made by ``fill`` or ``exhaust_inodes``."""
    target = Path(path)
    if target.is_dir():
        shutil.rmtree(target)
    else:
        target.unlink(missing_ok=True)
