"""Atomic, race-safe output files that respect the umask, and OS errors in plain words.

Every file the CLI writes goes through :func:`create_temp` and :func:`commit`:

* the data goes to a temporary file beside the destination, named
  ``.<name>.audiotok-tmp-<host>-<pid>-<random>`` so that it is hidden, obviously safe to
  delete, and never matched by folder scans or globs for ``.wav`` / ``.npy`` (see
  :func:`is_temp`);
* it is created with ``O_EXCL`` and mode ``0o666``, so the umask applies as it does for any
  Unix tool (``mkstemp`` would make it ``0600``);
* without ``force`` it is hard-linked to the destination, which fails if the destination
  exists, so of two processes writing the same output at once exactly one succeeds (a
  check-then-rename would let both "succeed"); with ``force`` it is renamed over it;
* a temporary file left by a killed process (``kill -9``) is removed by the next write to
  the same destination from the same machine once that process is gone
  (:func:`clean_stale`; ``<host>`` keeps a shared folder's other machines out of it).

:func:`open_atomic` wraps the three steps for code that writes through a file object
(checkpoints, manifests, logs).

:func:`describe_os_error` turns ``OSError`` into the project's words (``disk full``,
``permission denied``, ...) for ``error: <file>: <problem>`` lines.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import os
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from audiotok.errors import UserError

__all__ = [
    "TEMP_MARK",
    "is_temp",
    "create_temp",
    "commit",
    "clean_stale",
    "describe_os_error",
    "check_destination",
    "default_mode",
    "open_atomic",
    "write_text_atomic",
]

#: Part of every temporary file's name; scans skip names that contain it.
TEMP_MARK = ".audiotok-tmp-"
#: This machine in temporary names: a short hash of the host name.
HOST_TAG = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]

_WORDS = {
    errno.ENOSPC: "disk full (no space left on device)",
    errno.EDQUOT: "disk quota exceeded",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "read-only file system",
    errno.EISDIR: "is a directory",
    errno.ENOTDIR: "a parent of this path is a file, not a folder",
    errno.ENOENT: "no such file or folder",
    errno.ENAMETOOLONG: "file name too long",
    errno.EEXIST: "already exists",
    errno.EIO: "input/output error",
}


def describe_os_error(e: OSError) -> str:
    """A short lower-case description of ``e`` (no path, no errno number)."""
    if e.errno in _WORDS:
        return _WORDS[e.errno]
    return (e.strerror or type(e).__name__).lower()


def default_mode() -> int:
    """``0o666`` less the process umask: the mode a new file gets from ``open``."""
    try:  # Linux: read it without changing it (os.umask would, briefly, for every thread)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def is_temp(path: str | os.PathLike) -> bool:
    """Whether ``path`` names one of audiotok's temporary files."""
    return TEMP_MARK in Path(path).name


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


def clean_stale(dest: str | os.PathLike) -> None:
    """Remove temporary files for ``dest`` whose writing process no longer runs."""
    d = Path(dest)
    pattern = str(d.parent / f".{glob.escape(d.name)}{TEMP_MARK}*")
    for name in glob.glob(pattern):
        host, pid, *_ = name.rsplit(TEMP_MARK, 1)[1].split("-") + ["", ""]
        if host != HOST_TAG or not pid.isdigit():
            continue
        if int(pid) != os.getpid() and not _alive(int(pid)):
            try:
                Path(name).unlink(missing_ok=True)
            except OSError:  # another user's file in a shared folder: theirs to remove
                pass


def check_destination(dest: str | os.PathLike, force: bool) -> Path:
    """Fail early (before slow work) if ``dest`` cannot be written; create its folder.

    Raises:
        UserError: ``dest`` is a folder or a device, exists without ``force``, or its folder
            cannot be created.
    """
    p = Path(dest)
    if p.is_dir():
        raise UserError(f"{p}: output is a directory")
    if p.exists() and not p.is_file():
        raise UserError(f"{p}: output exists and is not a regular file")
    if p.exists() and not force:
        raise UserError(f"{p}: output already exists (use --force to overwrite)")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UserError(f"{p.parent}: exists and is not a folder") from None
    except OSError as e:
        raise UserError(f"{p.parent}: cannot create folder ({describe_os_error(e)})") from None
    return p


def create_temp(dest: str | os.PathLike) -> tuple[int, Path]:
    """Create a temporary file beside ``dest``: ``(open fd for writing, path)``.

    Raises:
        UserError: the folder is not writable (permission, disk full, ...).
    """
    d = Path(dest)
    clean_stale(d)
    while True:
        tmp = d.parent / f".{d.name}{TEMP_MARK}{HOST_TAG}-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        except FileExistsError:
            continue
        except OSError as e:
            raise UserError(f"{d}: cannot write ({describe_os_error(e)})") from None
        return fd, tmp


def commit(tmp: str | os.PathLike, dest: str | os.PathLike, *, force: bool) -> Path:
    """Move the finished temporary file ``tmp`` to ``dest``; ``tmp`` is gone afterwards.

    Without ``force`` the destination is created exclusively (a hard link, or where links
    are not supported an ``O_EXCL`` placeholder that is then replaced), so an existing or
    concurrently created file is never replaced.

    Raises:
        UserError: ``dest`` exists (without ``force``), is a folder or a device, or the move
            fails.
    """
    t, d = Path(tmp), Path(dest)
    try:
        if d.exists() and not d.is_file():
            raise UserError(
                f"{d}: output is a directory"
                if d.is_dir()
                else f"{d}: output exists and is not a regular file"
            )
        if force:
            os.replace(t, d)
            return d
        try:
            os.link(t, d)
        except FileExistsError:
            raise UserError(f"{d}: output already exists (use --force to overwrite)") from None
        except OSError as e:
            if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                raise
            try:  # no hard links here (e.g. FAT, some network file systems)
                os.close(os.open(d, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            except FileExistsError:
                raise UserError(f"{d}: output already exists (use --force to overwrite)") from None
            os.replace(t, d)
        return d
    except OSError as e:
        raise UserError(f"{d}: cannot write ({describe_os_error(e)})") from None
    finally:
        t.unlink(missing_ok=True)


@contextlib.contextmanager
def open_atomic(
    dest: str | os.PathLike, *, force: bool, text: bool = False, sync: bool = False
) -> Iterator[IO[Any]]:
    """Write ``dest`` through a file object; it appears only if the ``with`` block succeeds.

    Args:
        dest: the file to write (its folder must exist).
        force: replace an existing ``dest`` (else :func:`commit` refuses it, also under races).
        text: open in text mode (UTF-8) instead of binary.
        sync: ``fsync`` the data before it is moved into place (checkpoints: a crash right
            after must not leave an empty file under the final name).

    Raises:
        UserError: see :func:`create_temp` and :func:`commit`. An exception inside the block
            removes the temporary file and propagates.
    """
    fd, tmp = create_temp(dest)
    try:
        with os.fdopen(fd, "w" if text else "wb", encoding="utf-8" if text else None) as f:
            yield f
            if sync:
                f.flush()
                os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    commit(tmp, dest, force=force)


def write_text_atomic(dest: str | os.PathLike, text: str, *, force: bool = True) -> Path:
    """Write ``text`` (UTF-8) to ``dest`` through :func:`open_atomic`; returns ``dest``.

    ``force`` defaults to True: the callers are report writers whose ``report.md`` /
    ``report.json`` belong to the command itself (a rerun refreshes them).
    """
    with open_atomic(dest, force=force, text=True) as f:
        f.write(text)
    return Path(dest)
