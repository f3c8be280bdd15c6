"""Files written whole or not at all, never through a link, and the time stamps records carry.

A reader never sees half a file: each is written to a temporary file in the same folder,
fsynced, then renamed into place (a rename replaces a symbolic link, it never writes through
one). A file written as it grows (a log, the lock) is opened with ``open_regular``: never
through a symbolic link (``O_NOFOLLOW``), and refused in one line when a FIFO, a folder or a
socket sits at its name. ``read_regular`` reads the same way, so a FIFO never hangs a reader.
Every file name built from a record or a setting goes through ``safe_name``: one component,
no way out of its folder. ``now_iso`` is the one clock every record and log line uses.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import stat
import tempfile
from datetime import datetime, timezone
from pathlib import Path


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


NAME_BYTES = 200  # a name's longest safe_name form (a file system takes 255 bytes, the temp name adds some)
NAME_MAX = 255  # bytes of one name in a path: Linux's file systems, and macOS's, take no more
_UNSAFE = re.compile(r"[\x00-\x1f\x7f\s/\\]+|\.{2,}")  # control characters, spaces, separators, '..'


class NotARegularFile(ValueError):
    """A symbolic link, FIFO, folder or socket sits where a file is to be written or read.

    Attributes:
        kind: what is there ('a FIFO').
    """

    def __init__(self, message: str, kind: str):
        super().__init__(message)
        self.kind = kind


def safe_name(text: str) -> str:
    """``text`` as one component of a file name that stays in its folder: each run of control
    characters, white space, ``/``, ``\\`` or two or more dots becomes '_', leading dots are
    dropped (never '.', '..' or a hidden file), and a name longer than NAME_BYTES is cut, with a
    hash of the whole so that two long names stay apart."""
    name = _UNSAFE.sub("_", text).lstrip(".") or "_"
    if len(name.encode()) <= NAME_BYTES:
        return name
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    return name.encode()[:NAME_BYTES - 13].decode(errors="ignore") + "-" + digest


def check_name_lengths(path: Path, flag: str) -> Path:
    """``path``, or ValueError (one line) when one of its names is longer than a file system takes,
    which would otherwise fail deep inside as 'File name too long'."""
    long = next((part for part in path.parts if len(os.fsencode(part)) > NAME_MAX), None)
    if long is not None:
        raise ValueError(f"{flag} holds a name of {len(os.fsencode(long))} bytes, {long[:20]}...; accepted: names of "
                         f"at most {NAME_MAX} bytes between the slashes. Received: {flag} {path}")
    return path


def _kind(mode: int) -> str:
    return ("a FIFO" if stat.S_ISFIFO(mode) else "a folder" if stat.S_ISDIR(mode) else
            "a socket" if stat.S_ISSOCK(mode) else "a symbolic link" if stat.S_ISLNK(mode) else "a device")


def _refused(path: Path, kind: str) -> NotARegularFile:
    return NotARegularFile(f"{path} is {kind}, not a regular file; remove it or choose another folder", kind)


def _mode(path: Path) -> int | None:
    """``path``'s mode, not following a link; None when nothing is there."""
    try:
        return os.lstat(path).st_mode
    except FileNotFoundError:
        return None


def check_regular(path: Path) -> None:
    """Raise NotARegularFile unless ``path`` is a regular file (not a link to one) or absent."""
    mode = _mode(path)
    if mode is not None and not stat.S_ISREG(mode):
        raise _refused(path, _kind(mode))


def check_folder(path: Path) -> None:
    """Raise NotARegularFile unless ``path`` is a folder (not a link to one) or absent."""
    mode = _mode(path)
    if mode is not None and not stat.S_ISDIR(mode):
        kind = "a file" if stat.S_ISREG(mode) else _kind(mode)
        raise NotARegularFile(f"{path} is {kind}, not a folder; remove it or choose another folder", kind)


def open_regular(path: Path, flags: int, mode: int = 0o644) -> int:
    """``os.open`` of a regular file, never through a symbolic link and without blocking on a
    FIFO; returns the descriptor. ``flags`` are the access flags (os.O_RDWR | os.O_CREAT, ...);
    pass no O_TRUNC (truncate with ``os.ftruncate`` once it is known to be a file).

    Raises:
        NotARegularFile: a link, FIFO, folder, socket or device is there.
        OSError: as os.open.
    """
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK, mode)
    except OSError as error:
        if os.path.islink(path) or error.errno in (errno.ELOOP, errno.ENXIO, errno.EISDIR):
            raise _refused(path, _kind(os.lstat(path).st_mode)) from None
        raise
    file_mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(file_mode):
        os.close(fd)
        raise _refused(path, _kind(file_mode))
    os.set_blocking(fd, True)
    return fd


def open_for_writing(path: Path):
    """``path`` as a text file emptied for writing (``open(path, "w")``), through ``open_regular``."""
    fd = open_regular(path, os.O_WRONLY | os.O_CREAT)
    os.ftruncate(fd, 0)
    return os.fdopen(fd, "w")


def read_regular(path: Path, limit: int = -1) -> bytes:
    """The bytes of ``path`` (at most ``limit``), through ``open_regular``: a FIFO never hangs."""
    with os.fdopen(open_regular(path, os.O_RDONLY), "rb") as file:
        return file.read(limit)


def _write_atomic(path: Path, write, mode: str = "w") -> None:
    """Call ``write(file)`` on a temp file in the same folder, fsync it, then rename it into place
    (which replaces a link or a FIFO there, never writing through it; a folder there is refused)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir() and not path.is_symlink():
        raise _refused(path, "a folder")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """Write text so that a reader sees the whole file or none of it (temp file, fsync, rename)."""
    _write_atomic(path, lambda f: f.write(text))


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write bytes so that a reader sees the whole file or none of it (temp file, fsync, rename)."""
    _write_atomic(path, lambda f: f.write(data), mode="wb")


def write_json_atomic(path: Path, payload: dict) -> None:
    """Write strict JSON so that a reader sees the whole file or none of it (temp file, fsync,
    rename); a NaN in ``payload`` raises ValueError (``finite`` replaces them)."""
    _write_atomic(path, lambda f: json.dump(payload, f, indent=1, sort_keys=True, allow_nan=False))
