"""A results folder: the one owner of its layout, its records and the names of everything in it.

    runs/<run_id>.json            a run's record (``bench.records.store``), written whole
    logs/<name>.log               a run's files, named after it (``bench.records.runfiles``):
    history/<name>.csv              the worker's output, the epochs of its history,
    tensorboard/<name>/             its TensorBoard logs (``--tensorboard``),
    weights/<name>.weights.h5       its final weights (``--save-weights``)
    checkpoints/<run_id>/         a run's state while it has no record (``bench.run.checkpoint``)
    .run.lock                     the runner's lock (``bench.records.lock``)
    sources.toml                  the published table and claims it is judged against
    sources-published.csv           (``bench.analysis.sources`` parses it), with copies of
    sources-claims.toml             the user's files beside it

The report's own files (report.md, CSVs, figures) are ``bench.report``'s. Every other module
asks a ``Results`` for a path in the folder; none joins these names itself.
"""
from __future__ import annotations

import contextlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from bench.files import check_folder, read_regular, write_bytes_atomic, write_json_atomic
from bench.records.store import RunRecord, read_record


@dataclass(frozen=True)
class Results:
    """A results folder (it need not exist yet).

    Attributes:
        folder: the folder; a string is taken as its path.
    """

    folder: Path

    RUNS: ClassVar[str] = "runs"
    CHECKPOINTS: ClassVar[str] = "checkpoints"
    LOCK: ClassVar[str] = ".run.lock"
    SOURCES: ClassVar[str] = "sources.toml"
    SOURCE_COPIES: ClassVar[dict[str, str]] = {"published": "sources-published.csv", "claims": "sources-claims.toml"}
    # a run's file kind -> (folder, suffix)
    KINDS: ClassVar[dict[str, tuple[str, str]]] = {
        "log": ("logs", ".log"), "history": ("history", ".csv"), "tensorboard": ("tensorboard", ""),
        "weights": ("weights", ".weights.h5")}

    def __post_init__(self):
        object.__setattr__(self, "folder", Path(self.folder))

    # ------------------------------------------------------------ records

    @property
    def runs(self) -> Path:
        """The records' folder."""
        return self.folder / self.RUNS

    def record_path(self, run_id: str) -> Path:
        return self.runs / f"{run_id}.json"

    def record_files(self) -> list[Path]:
        """The files of the records' folder named ``*.json``, by name; none when it is absent."""
        return sorted(self.runs.glob("*.json"))

    def write(self, record: RunRecord) -> Path:
        """Write ``record`` whole into its file (a reader never sees half of it); return the path."""
        path = self.record_path(record.run_id)
        write_json_atomic(path, record.to_dict())
        return path

    def record(self, run_id: str) -> RunRecord:
        """The record of ``run_id``.

        Raises:
            ValueError: there is none, or its file is not a record (``store.read_record``).
        """
        path = self.record_path(run_id)
        if not path.is_file():
            raise ValueError(f"no record of run {run_id} in {self.runs}. Received: run_id={run_id!r}")
        return read_record(path)

    def records(self) -> tuple[list[RunRecord], list[str]]:
        """All valid records, older schema versions upgraded, each once, and a message for each file
        that is not one ('path: what is wrong'), or that holds the same record as another file.

        A record copied under another name is one observation: of files with equal records, the
        one named after its run id is kept (else the first by name). Records that share a run id
        but differ are all kept; the report keeps one per configuration and seed.
        """
        read, problems = [], []
        for path in self.record_files():
            try:
                record = read_record(path)
            except ValueError as error:
                problems.append(str(error))
                continue
            read.append((path, record, json.dumps(record.to_dict(), sort_keys=True)))
        kept = {}
        for path, record, text in sorted(read, key=lambda entry: (entry[0].stem != entry[1].run_id, entry[0].name)):
            kept.setdefault(text, path)
        problems += [f"{path}: the same record as {kept[text]}; counted once"
                     for path, _, text in read if kept[text] != path]
        return [record for path, record, text in read if kept[text] == path], problems

    # ------------------------------------------------------------ a run's files

    def file(self, kind: str, name: str) -> Path:
        """The path of a run's file of ``kind`` (a key of KINDS) named ``name``."""
        return self._kind_folder(kind) / f"{name}{self.KINDS[kind][1]}"

    def _kind_folder(self, kind: str) -> Path:
        return self.folder / self.KINDS[kind][0]

    def checkpoint(self, run_id: str) -> Path:
        """The run's checkpoint folder, named by run id so that any invocation finds it."""
        return self.folder / self.CHECKPOINTS / run_id

    def remove_checkpoint(self, run_id: str) -> None:
        """Remove the run's checkpoint folder (it has its record)."""
        shutil.rmtree(self.checkpoint(run_id), ignore_errors=True)

    def remove_empty_checkpoints(self) -> None:
        """Remove ``checkpoints/`` when no run has a checkpoint there; call it when no run is in
        flight, so that none is about to make its own in it."""
        with contextlib.suppress(OSError):  # absent, or not empty: a run's checkpoint (or one set aside)
            (self.folder / self.CHECKPOINTS).rmdir()

    def prepare(self) -> None:
        """Make the logs folder, so that runs on this machine write into it, once each folder the
        runs write into (the records', the checkpoints', each file kind's) is checked.

        Raises:
            NotARegularFile: one of those folders is a file or a link (one line).
        """
        for folder in (self.runs, self.folder / self.CHECKPOINTS, *map(self._kind_folder, self.KINDS)):
            check_folder(folder)
        self._kind_folder("log").mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------ the lock and the sources

    @property
    def lock(self) -> Path:
        """The runner's lock file."""
        return self.folder / self.LOCK

    @property
    def sources(self) -> Path:
        """The file that keeps the published table and claims the folder is judged against."""
        return self.folder / self.SOURCES

    def source_copy(self, kind: str) -> Path:
        """The kept copy of the user's file of ``kind`` ("published" or "claims")."""
        return self.folder / self.SOURCE_COPIES[kind]

    def read_sources(self) -> str | None:
        """The text of the sources file; None when the folder keeps none.

        Raises:
            UnicodeDecodeError: the file is not UTF-8 text.
        """
        return read_regular(self.sources).decode() if self.sources.is_file() else None

    def keep_sources(self, text: str, copies: dict[str, bytes]) -> None:
        """Write the sources file's ``text`` and the copies (kind -> the user's file's bytes) beside
        it, each unless it holds them already: the same command again changes nothing."""
        for kind, data in copies.items():
            _write_changed(self.source_copy(kind), data)
        _write_changed(self.sources, text.encode())


def _write_changed(path: Path, data: bytes) -> None:
    if not path.exists() or read_regular(path) != data:
        write_bytes_atomic(path, data)
