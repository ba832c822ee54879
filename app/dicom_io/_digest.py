"""The SHA-256 of a film's file, computed when first asked for.

Hashing a 10 MB film costs 15-20 ms of CPU, as much as reading its native
pixels, and batch never asks for it; the viewer and ``info`` do.  The digest
must be that of the bytes that were decoded, so the file's identity (device,
inode, size, modification time) is noted before decoding and checked again
around the hashing: a file replaced in between is an error, never the digest
of another file.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

from app.errors import InputFileError

__all__ = ["FileDigest", "file_sha256"]


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes, hex, read in 1 MiB blocks.

    Parameters
    ----------
    path : str or os.PathLike
        The file.

    Returns
    -------
    str
        64 hex digits.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _identity(path: Path) -> tuple[int, int, int, int]:
    status = os.stat(path)
    return (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns)


class FileDigest:
    """SHA-256 of a file as it was when this object was made, computed on first use.

    Parameters
    ----------
    path : pathlib.Path
        The file; its identity (device, inode, size, modification time in ns)
        is noted now.

    Notes
    -----
    Thread-safe: concurrent first uses hash once.  Picklable: a copy in another
    process hashes (or has) the same file with the same identity check.
    """

    __slots__ = ("_error", "_identity", "_lock", "_path", "_value")

    def __init__(self, path: Path) -> None:
        self._path = path
        try:
            self._identity = _identity(path)
        except OSError as exc:
            raise InputFileError(path, f"cannot be read ({exc.strerror or type(exc).__name__})") from None
        self._value: str | None = None
        self._error: str | None = None
        self._lock = threading.Lock()

    def __getstate__(self) -> tuple:
        # films go to the viewer's worker process by pickle (report export): the lock stays here
        with self._lock:
            return (self._path, self._identity, self._value, self._error)

    def __setstate__(self, state: tuple) -> None:
        self._path, self._identity, self._value, self._error = state
        self._lock = threading.Lock()

    @property
    def value(self) -> str:
        """The hex digest.

        Raises
        ------
        app.errors.InputFileError
            The file was replaced, changed or removed since it was loaded.
        """
        with self._lock:
            if self._value is None and self._error is None:
                self._value, self._error = self._compute()
        if self._error is not None:
            raise InputFileError(self._path, self._error)
        assert self._value is not None
        return self._value

    def _compute(self) -> tuple[str | None, str | None]:
        changed = "changed on disk since it was loaded: its SHA-256 would not be the loaded film's"
        try:
            if _identity(self._path) != self._identity:
                return None, changed
            value = file_sha256(self._path)
            if _identity(self._path) != self._identity:
                return None, changed
        except OSError as exc:
            return None, f"cannot be read since it was loaded ({exc.strerror or type(exc).__name__})"
        return value, None
