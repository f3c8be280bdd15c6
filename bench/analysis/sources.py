"""Which published table and claims a results folder is judged against (docs/own-table.md).

Each is chosen by one word or a path: "table4" (the shipped ``bench/assets`` files, the report's
Table 4 and claims), "none", or a user's file. The first that says wins, for each separately:

1. the flags ``--published FILE`` and ``--claims FILE``;
2. the results folder's ``sources.toml`` (``Results.sources``), written by ``run`` and ``report``
   when a flag or a user's profile chose, with a copy of each user's file beside it (``keep``), so the folder's
   report is made again from the same files when the originals move or change;
3. the ``[report]`` keys of the records' profile when it is a shipped one (``published`` and
   ``claims``; the Table 4 profiles name "table4", the others nothing, meaning "none");
4. "table4" for a folder of records whose profile fishbench does not know and which keeps no
   choice (made before sources.toml existed): it is judged as it always was.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from bench.analysis.claims import CLAIMS_FILE, PUBLISHED_FILE
from bench.files import read_regular
from bench.records.results import Results

TABLE4, NONE = "table4", "none"
KINDS = {"published": PUBLISHED_FILE, "claims": CLAIMS_FILE}  # kind -> its shipped Table 4 file


@dataclass(frozen=True)
class Sources:
    """The published table and the claims: each "table4", "none" or a file's path."""

    published: str = NONE
    claims: str = NONE

    def file(self, kind: str) -> Path | None:
        """The file to read for ``kind`` ("published" or "claims"); None for none."""
        choice = getattr(self, kind)
        return KINDS[kind] if choice == TABLE4 else None if choice == NONE else Path(choice)

    @property
    def text(self) -> str:
        """'published table: bench/assets/table4_published.csv (the report's Table 4); claims: none'."""
        return "; ".join(f"{'published table' if kind == 'published' else kind}: {choice_text(getattr(self, kind), kind)}"
                         for kind in KINDS)


TABLE4_SOURCES = Sources(TABLE4, TABLE4)


def choice_text(choice: str, kind: str) -> str:
    if choice == TABLE4:
        return f"bench/assets/{KINDS[kind].name} (the report's Table 4)"
    return "none" if choice == NONE else choice


def checked_choice(kind: str, choice: str, where: str) -> str:
    """``choice`` when it is "table4", "none" or an existing file.

    Raises:
        ValueError: one line naming ``where`` (a flag or a file's key), the value and what is accepted.
    """
    if choice in (TABLE4, NONE) or Path(choice).is_file():
        return choice
    raise ValueError(f"{where}: no such file; accepted: {TABLE4}, {NONE} or the path of a {kind} file "
                     f"(docs/own-table.md). Received: {choice!r}")


def read_kept(folder: Path) -> Sources | None:
    """The choice ``folder/sources.toml`` keeps, its files' paths relative to the folder; None without one.

    Raises:
        ValueError: the file is not TOML of the keys published and claims, or names a file that is gone.
    """
    results = Results(folder)
    path = results.sources
    try:
        text = results.read_sources()
        if text is None:
            return None
        kept = tomllib.loads(text)
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ValueError(f"{path}: not valid TOML: {error}") from None
    if set(kept) != set(KINDS) or not all(isinstance(v, str) for v in kept.values()):
        raise ValueError(f"{path}: needs exactly the string keys published and claims; accepted: "
                         f"{TABLE4}, {NONE} or a file name in {folder}. Received: {kept!r}")
    chosen = {kind: v if v in (TABLE4, NONE) else str(folder / v) for kind, v in kept.items()}
    return Sources(**{kind: checked_choice(kind, choice, f"{path} {kind}") for kind, choice in chosen.items()})


def keep(folder: Path, sources: Sources) -> None:
    """Keep the choice ``sources`` in ``folder`` (``Results.keep_sources``), with a copy of each user's file."""
    results = Results(folder)
    copies = {kind: read_regular(Path(getattr(sources, kind))) for kind in KINDS
              if getattr(sources, kind) not in (TABLE4, NONE)}
    kept = {kind: results.source_copy(kind).name if kind in copies else getattr(sources, kind) for kind in KINDS}
    lines = ["# What `fishbench report` judges this folder against (docs/own-table.md): table4, none, or a",
             "# copy of the file that was chosen, beside this one. --published and --claims replace it."]
    results.keep_sources("\n".join(lines + [f'{kind} = "{kept[kind]}"' for kind in KINDS]) + "\n", copies)


def choose(given: dict[str, str | None], kept: Sources | None, profiles: list[Sources | None]) -> Sources:
    """The sources, each kind from the first that says (module docstring).

    Args:
        given: kind -> the flag's value, None where not given.
        kept: the results folder's kept choice (``read_kept``).
        profiles: the ``[report]`` choice of each profile of the records; None for a profile
            fishbench does not know.

    Raises:
        ValueError: the records' shipped profiles choose differently (pass the flags), or a
            chosen file does not exist.
    """
    known = list(dict.fromkeys(p for p in profiles if p is not None))
    if len(known) > 1 and kept is None:
        missing = [kind for kind in KINDS if given.get(kind) is None and len({getattr(p, kind) for p in known}) > 1]
        if missing:
            raise ValueError(f"the records' profiles name different {' and '.join(missing)} files "
                             f"({'; '.join(p.text for p in known)}); accepted: choose with "
                             + " and ".join(f"--{kind}" for kind in missing))
    fallback = kept or (known[0] if known else TABLE4_SOURCES if profiles else Sources())
    return Sources(**{kind: checked_choice(kind, given[kind], f"--{kind}") if given.get(kind) else
                      checked_choice(kind, getattr(fallback, kind), f"the profile's [report] {kind}") for kind in KINDS})
