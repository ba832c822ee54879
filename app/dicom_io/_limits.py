"""Limits that keep a hostile file from taking the process down.

- the memory budget of one film, checked against the declared image size
  before anything is allocated;
- only regular files are opened (a named pipe would block ``open`` or
  ``read`` forever, a device could be endless);
- a decoder that may abort the process (a C++ exception or ``std::bad_alloc``
  in GDCM ends it with SIGABRT) runs in a forked child, so an abort costs one
  file.
"""

from __future__ import annotations

import contextlib
import faulthandler
import math
import mmap
import os
import select
import signal
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from app.errors import InputFileError, UserError

__all__ = [
    "BUDGET_ENV",
    "BYTES_PER_PIXEL",
    "DEFAULT_BUDGET_MB",
    "check_budget",
    "check_regular_file",
    "memory_budget_bytes",
    "run_guarded",
    "silenced_stderr",
]

#: Environment variable overriding the memory budget of one film, in MB.
BUDGET_ENV = "LUMBAR_INSTABILITY_MEMORY_BUDGET_MB"
#: Default budget: a 16 GB workstation running the viewer or 4 batch workers
#: keeps half of its memory free even when every worker decodes its largest film.
DEFAULT_BUDGET_MB = 2048
#: Estimated peak bytes per pixel (and sample) while one film loads: the
#: decoder's buffers, the stored array and a float32 copy after a rescale.
#: Measured peaks on a 4000 x 5000 12-bit film: 2.2 (native), 6 (rescaled),
#: 5.6 (JPEG 2000, openjpeg), 12.9 (JPEG 2000, GDCM) bytes per pixel.
BYTES_PER_PIXEL = 13

_KINDS = (
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISDIR, "a directory"),
)


def memory_budget_bytes(budget_mb: float | None = None) -> int:
    """The memory one film may take while it loads, in bytes.

    Parameters
    ----------
    budget_mb : float, optional
        The budget in MB (10^6 bytes); default: the environment variable
        ``LUMBAR_INSTABILITY_MEMORY_BUDGET_MB``, else 2048.

    Raises
    ------
    app.errors.UserError
        The environment variable is not a positive number.
    """
    if budget_mb is None:
        text = os.environ.get(BUDGET_ENV, "").strip()
        if not text:
            return DEFAULT_BUDGET_MB * 10**6
        try:
            budget_mb = float(text)
        except ValueError:
            raise UserError(f"{BUDGET_ENV} must be a number of MB") from None
        if not math.isfinite(budget_mb) or budget_mb <= 0:
            raise UserError(f"{BUDGET_ENV} must be a positive number of MB")
    return int(budget_mb * 10**6)


def check_budget(
    path: Path, rows: int, columns: int, samples: int, budget: int, what: str = "image"
) -> None:
    """Refuse an image whose estimated decoding peak exceeds the budget.

    Raises
    ------
    app.errors.InputFileError
        ``"image of 65535 x 65535 pixels would need about 55835 MB to decode,
        more than the memory budget of 2048 MB (LUMBAR_INSTABILITY_MEMORY_BUDGET_MB)"``.
    """
    need = rows * columns * max(samples, 1) * BYTES_PER_PIXEL
    if need > budget:
        raise InputFileError(
            path,
            f"{what} of {columns} x {rows} pixels would need about {need // 10**6} MB to "
            f"decode, more than the memory budget of {budget // 10**6} MB ({BUDGET_ENV})",
        )


def check_regular_file(path: Path) -> int:
    """Refuse anything that is not a regular file, without opening it; return its size.

    ``os.stat`` follows symbolic links, so a link to a film is read and a link
    to a pipe is refused.

    Raises
    ------
    app.errors.InputFileError
        ``no such file``, ``not a regular file (a named pipe)``, ...
    """
    try:
        status = os.stat(path)
    except FileNotFoundError:
        raise InputFileError(path, "no such file") from None
    except PermissionError:
        raise InputFileError(path, "cannot be read: permission denied") from None
    except OSError as exc:
        raise InputFileError(path, f"cannot be read: {exc.strerror or type(exc).__name__}") from None
    mode = status.st_mode
    if stat.S_ISREG(mode):
        return status.st_size
    if stat.S_ISDIR(mode):
        raise InputFileError(path, "is a directory, not a file")
    kind = next((name for test, name in _KINDS if test(mode)), "not a plain file")
    raise InputFileError(path, f"not a regular file ({kind}): skipped")


def run_guarded(
    decode: Callable[[], np.ndarray],
    shape: tuple[int, ...],
    dtype: np.dtype,
    *,
    timeout_s: float = 120.0,
) -> np.ndarray:
    """Run ``decode`` in a forked child; its array comes back through shared memory.

    Parameters
    ----------
    decode : callable
        Returns the decoded array, shape ``shape`` (any integer dtype; it is
        converted to ``dtype``).
    shape : tuple of int
        Expected shape of the array.
    dtype : numpy.dtype
        dtype of the returned array.
    timeout_s : float
        The child is killed after this many seconds.

    Returns
    -------
    numpy.ndarray
        Shape ``shape``, dtype ``dtype``, backed by the shared mapping.

    Raises
    ------
    RuntimeError
        The decoder raised (its one-line message), ended by a signal (an
        abort), or did not finish in time.
    """
    dtype = np.dtype(dtype)
    count = math.prod(shape)
    shared = mmap.mmap(-1, max(count * dtype.itemsize, 1))
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child (coverage does not follow forks)
        code = 1
        try:
            faulthandler.disable()  # an abort is reported by the parent, in one line
            os.close(read_end)
            try:
                array = decode()
                if array.shape != shape:
                    raise ValueError(f"decoded shape {array.shape}, expected {shape}")
                target = np.frombuffer(shared, dtype=dtype, count=count).reshape(shape)
                np.copyto(target, array, casting="unsafe")
                code = 0
            except BaseException as exc:  # reported to the parent, never raised here
                message = " ".join(str(exc).split())[:400] or type(exc).__name__
                os.write(write_end, message.encode("utf-8", "replace"))
        finally:
            os._exit(code)
    os.close(write_end)
    message = b""
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([read_end], [], [], max(remaining, 0.0))
            if not ready:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                raise RuntimeError(f"the decoder did not finish within {timeout_s:g} s")
            chunk = os.read(read_end, 4096)
            if not chunk:
                break
            message += chunk
    finally:
        os.close(read_end)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        name = signal.Signals(number).name if number in signal.Signals._value2member_map_ else number
        raise RuntimeError(f"the decoder crashed ({name})")
    if os.WEXITSTATUS(status) != 0:
        raise RuntimeError(message.decode("utf-8", "replace") or "the decoder failed")
    return np.frombuffer(shared, dtype=dtype, count=count).reshape(shape)


_STDERR_LOCK = threading.Lock()
_stderr_depth = 0
_stderr_saved: int | None = None


@contextlib.contextmanager
def silenced_stderr() -> Iterator[None]:
    """Send what C/C++/Rust libraries write to file descriptor 2 to /dev/null meanwhile.

    Decoders print their own diagnostics (libpng's ``Not enough image data``,
    openjpeg's ``Tile part length size inconsistent``, a Rust panic message):
    the user gets this module's one-line reason instead.  Python's own
    ``sys.stderr`` writes go through the same descriptor, so they are held too;
    nesting and threads share one redirection.
    """
    global _stderr_depth, _stderr_saved
    fd = 2  # where C libraries write, whatever sys.stderr is
    with _STDERR_LOCK:
        if _stderr_depth == 0:
            try:
                sys.stderr.flush()
            except (AttributeError, OSError, ValueError):
                pass
            try:
                _stderr_saved = os.dup(fd)
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, fd)
                os.close(null)
            except OSError:
                _stderr_saved = None
        _stderr_depth += 1
    try:
        yield
    finally:
        with _STDERR_LOCK:
            _stderr_depth -= 1
            if _stderr_depth == 0 and _stderr_saved is not None:
                os.dup2(_stderr_saved, fd)
                os.close(_stderr_saved)
                _stderr_saved = None
