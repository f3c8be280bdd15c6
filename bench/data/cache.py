"""The dataset cache: a folder (``$BENCH_CACHE_DIR``, else ``~/.cache/fishbench``) of entries
written whole or not at all and checked at every read.

An entry is a folder of ``.npy`` arrays and a meta.json listing each file's size and CRC-32
(``bench.data.datasets`` keeps its preprocessed datasets there, keyed by everything that changes
their bytes). A read checks the files against meta.json before memory-mapping them and
removes a damaged entry, with a warning, to be rebuilt. A write goes into a temporary
folder named after its writer, then renamed into place: a failed or interrupted write
removes its folder, and ``remove_stale`` the folders of writers that died.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import shutil
import socket
import warnings
import zlib
from pathlib import Path

import numpy as np

from bench.lifetime import process_token

CACHE_DIR_ENV = "BENCH_CACHE_DIR"
TEMP_MARK = ".tmp~"  # <entry>.tmp~<host>~<writer's process token>~<random>: an entry being written
FULL_DISK = (errno.ENOSPC, errno.EDQUOT)


class CacheUnusable(ValueError):
    """The cache folder cannot be written: it is a file, or not writable (a bad path)."""


class CacheFull(RuntimeError):
    """The disk under the cache is full; nothing half-written is left."""


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_DIR_ENV) or Path("~/.cache/fishbench").expanduser())


@contextlib.contextmanager
def write_errors(folder: Path):
    """An OSError of writing the cache as CacheFull (a full disk) or CacheUnusable (a bad path)."""
    try:
        yield
    except OSError as error:
        reason = error.strerror or str(error)
        if error.errno in FULL_DISK:
            raise CacheFull(f"the dataset cache in {folder} cannot be written ({reason}); nothing half-written is left. "
                            f"Free some space, or set ${CACHE_DIR_ENV} to a folder on another disk") from None
        received = os.environ.get(CACHE_DIR_ENV) or f"unset, so {cache_dir()}"
        raise CacheUnusable(f"the dataset cache in {folder} cannot be written ({reason}); accepted: a writable "
                            f"folder, created if missing. Received: {CACHE_DIR_ENV}={received}") from None


def _file_check(path: Path) -> dict:
    """A file's size and CRC-32: cheap enough to check at every load, and catches overwritten bytes."""
    crc = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            crc = zlib.crc32(chunk, crc)
    return {"bytes": path.stat().st_size, "crc32": crc}


def _damage(path: Path, files: dict, keys: tuple[str, ...]) -> str | None:
    """What is wrong with the entry at ``path`` whose meta.json lists ``files``, or None."""
    for key in keys:
        file = path / f"{key}.npy"
        if not file.is_file():
            return f"{file.name} is missing"
        found = _file_check(file)
        if found != files[key]:
            return (f"{file.name} has {found['bytes']} bytes and CRC-32 {found['crc32']}, meta.json says "
                    f"{files[key]['bytes']} and {files[key]['crc32']}")
    return None


def read_entry(path: Path, keys: tuple[str, ...]) -> tuple[dict, dict[str, np.ndarray]] | None:
    """The meta.json and memory-mapped arrays `keys` of the entry at ``path``; None when there is none.

    An entry that fails its checks (``_damage``) is removed, with a warning, to be rebuilt.
    """
    if not path.exists():
        return None
    try:
        meta = json.loads((path / "meta.json").read_text())
        problem = _damage(path, meta["files"], keys)
    except (OSError, ValueError, KeyError, TypeError) as error:
        problem = f"its meta.json is unreadable: {error}"
    if problem:
        warnings.warn(f"dataset cache entry {path} is damaged ({problem}); rebuilding it", stacklevel=3)
        shutil.rmtree(path, ignore_errors=True)
        return None
    return meta, {key: np.load(path / f"{key}.npy", mmap_mode="r") for key in keys}


def write_entry(path: Path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Write every array, then meta.json with each file's size and CRC-32, into a temporary
    folder renamed into place. A failure or an interrupt removes the folder; a writer killed
    outright leaves it to ``remove_stale``.

    Raises:
        CacheFull: the disk is full. CacheUnusable: the folder cannot be written.
    """
    writer = f"{socket.gethostname()}~{process_token(os.getpid())}~{secrets.token_hex(4)}"
    tmp = path.parent / f"{path.name}{TEMP_MARK}{writer}"
    try:
        with write_errors(path.parent):
            tmp.mkdir(parents=True)
            for key, array in arrays.items():
                np.save(tmp / f"{key}.npy", array)
            files = {key: _file_check(tmp / f"{key}.npy") for key in arrays}
            (tmp / "meta.json").write_text(json.dumps({**meta, "files": files}, indent=1))
            try:
                tmp.rename(path)
            except OSError:
                if not (path / "meta.json").exists():  # else another process finished the same entry first
                    raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def remove_stale(folder: Path) -> None:
    """Remove the temporary entries in ``folder`` of writers on this machine that have died."""
    host = socket.gethostname()
    for tmp in folder.glob(f"*{TEMP_MARK}*"):
        writer = tmp.name.split(TEMP_MARK, 1)[1].split("~")
        pid = writer[1].split(":")[1] if len(writer) == 3 and writer[1].count(":") == 2 else ""
        if writer[0] == host and pid.isdigit() and process_token(int(pid)) != writer[1]:
            shutil.rmtree(tmp, ignore_errors=True)
