"""Atomic replacement of a published folder (a week's data, the site).

``swap_in(new, live)`` makes ``new`` visible under the name ``live`` in one
step: on Linux with ``renameat2(RENAME_EXCHANGE)`` the two folders trade
names atomically, so a reader sees either the whole old folder or the whole
new one, and a process killed at any instant leaves one of the two complete
states. The previous version is then deleted.

Where the exchange is not available (another OS, a file system without
support) it falls back to two renames, ``live -> live.old-<id>`` then
``new -> live``; ``recover(live)`` (run at the start of every command) puts
an orphaned ``live.old-*`` back if a crash fell between them.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import errno
import glob
import os
import shutil
import uuid

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2

try:
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    _renameat2 = getattr(_libc, "renameat2", None)
except OSError:  # no C library to load (unusual platforms)
    _renameat2 = None


def _exchange(a: str, b: str) -> bool:
    """Atomically trade the names of ``a`` and ``b``; False if unsupported."""
    if _renameat2 is None:
        return False
    if _renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, getattr(errno, "ENOTSUP", errno.EINVAL)):
        return False
    raise OSError(err, os.strerror(err), a)


def swap_in(new: str, live: str, before_delete=None) -> None:
    """Publish folder ``new`` as ``live`` (same file system) and delete the old one.

    ``before_delete`` is called after the swap, before the old version is
    removed (tests use it as a fault-injection point)."""
    os.makedirs(os.path.dirname(os.path.abspath(live)), exist_ok=True)
    if not os.path.lexists(live):
        os.rename(new, live)
        return
    if _exchange(new, live):
        old = new  # after the exchange, the staging name holds the old version
    else:
        old = f"{live}.old-{uuid.uuid4().hex[:8]}"
        os.rename(live, old)
        os.rename(new, live)
    if before_delete:
        before_delete()
    shutil.rmtree(old, ignore_errors=True)


def recover(live: str) -> bool:
    """Undo a fallback swap that died between its two renames; True if it did."""
    if os.path.lexists(live):
        for leftover in glob.glob(glob.escape(live) + ".old-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        return False
    olds = sorted(glob.glob(glob.escape(live) + ".old-*"))
    if not olds:
        return False
    os.rename(olds[-1], live)
    return True
