"""``python -m bench``: the command line (``bench.cli``).

``python -m`` puts the current folder first on ``sys.path``. In this checkout that folder is
where ``bench`` and ``models`` are; anywhere else it is dropped (as ``python -P`` would), so a
folder's own ``models/`` package cannot stand in for the installed one. (A folder's own
``bench/`` is what ``python -m bench`` runs there: from other folders, use ``fishbench``.)
"""
import sys
from pathlib import Path

if not sys.flags.safe_path and Path(sys.path[0]).resolve() != Path(__file__).resolve().parent.parent:
    del sys.path[0]

from bench.cli import main  # noqa: E402 - after the path is settled

sys.exit(main(prog="python -m bench"))
