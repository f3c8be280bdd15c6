"""Files written whole or not at all, and the time stamps records carry.

A reader never sees half a file: each is written to a temporary file in the same folder,
fsynced, then renamed into place. ``now_iso`` is the one clock every record and log line uses.
"""
from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _write_atomic(path: Path, write) -> None:
    """Call ``write(file)`` on a temp file in the same folder, fsync it, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
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


def write_json_atomic(path: Path, payload: dict) -> None:
    """Write strict JSON so that a reader sees the whole file or none of it (temp file, fsync,
    rename); a NaN in ``payload`` raises ValueError (``finite`` replaces them)."""
    _write_atomic(path, lambda f: json.dump(payload, f, indent=1, sort_keys=True, allow_nan=False))
