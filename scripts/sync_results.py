"""Bring a campaign's finished runs into another results folder, and rebuild its report.

A long campaign runs from a git worktree pinned at one commit, into that worktree's results
folder (README, "On a cluster"); this copies into the main checkout's folder each record
it lacks, with the files the record names (its log and history), and never a run still in
flight (it has no record yet). Records are copied as they are, byte for byte; a file that is
not a record is named and left. Then ``python -m bench report`` rebuilds the target's report.

usage: python scripts/sync_results.py CAMPAIGN_RESULTS TARGET_RESULTS
"""
import shutil
import sys
from pathlib import Path

from bench import cli
from bench.records.results import Results
from bench.records.store import read_record


def copy_finished(source: Path, target: Path) -> list[str]:
    """Copy each record of ``source`` that ``target`` lacks (by file name), with its files; the
    names of the records copied. Raises ValueError for a source that is no results folder."""
    if not Results(source).runs.is_dir():
        raise ValueError(f"{source} has no runs/ folder; accepted: a results folder that bench run wrote")
    copied = []
    for path in Results(source).record_files():
        if (Results(target).runs / path.name).exists():
            continue
        try:
            record = read_record(path)
        except ValueError as error:
            print(f"not copied: {error}", file=sys.stderr)
            continue
        for relative in record.files.values():
            if (source / relative).exists():
                copy(source / relative, target / relative)
            else:
                print(f"{path.name} names {relative}, which {source} lacks: the record is copied without it",
                      file=sys.stderr)
        copy(path, Results(target).runs / path.name)  # last: a record in the target has its files
        copied.append(path.name)
    return copied


def copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target, dirs_exist_ok=True)
    else:
        shutil.copy2(source, target)


def main(source: str, target: str) -> int:
    try:
        copied = copy_finished(Path(source), Path(target))
    except ValueError as error:
        print(f"sync_results: {error}", file=sys.stderr)
        return 2
    print(f"{len(copied)} new records copied to {target}")
    return cli.main(["report", "--results", target])


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__.rsplit("usage: ", 1)[1].strip())
    sys.exit(main(*sys.argv[1:]))
