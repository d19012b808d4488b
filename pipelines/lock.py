"""One run at a time per output folder: an OS file lock.

``flock`` locks belong to the open file, so the kernel releases them when the
holder exits for any reason, SIGKILL included: a lock "left" by a killed run
is not held by anyone, and the next run simply takes it. The file keeps the
holder's pid and command only so that a refused run can say who holds it.
"""
from __future__ import annotations

import fcntl
import json
import os
import sys


class LockBusy(Exception):
    """Another portcensus run holds the lock; the message names it."""


class RunLock:
    def __init__(self, out: str):
        self.path = os.path.join(out, ".lock")
        self._fd: int | None = None

    def __enter__(self) -> "RunLock":
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise LockBusy(f"another portcensus run holds {self.path}"
                           f"{' (pid ' + str(holder.get('pid')) + ': ' + holder.get('cmd', '') + ')' if holder else ''}") from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "cmd": " ".join(sys.argv[:4])}).encode())
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _read_holder(fd: int) -> dict:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return json.loads(os.read(fd, 4096) or b"{}")
    except (OSError, ValueError):
        return {}
