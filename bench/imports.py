"""Which code a run executes: this installation's ``bench`` and ``models``.

No shadowing. A folder with its own ``models/`` (or ``bench/``) package must not replace the
installed one. The ``fishbench`` script never puts the current folder on ``sys.path``, and
``python -m bench`` drops it when it is not the checkout (``bench/__main__.py``); a worker
is started with ``python -P`` (nothing prepended) and ``INSTALLED`` first on its
``PYTHONPATH`` (``child_env``), so it runs the runner's code wherever it was started.
"""
from __future__ import annotations

import os
from pathlib import Path

# The folder that holds the running bench and models packages: site-packages, or a checkout.
INSTALLED = Path(__file__).resolve().parent.parent


def child_env(env: dict) -> dict:
    """``env`` for a ``python -P`` child that must run this installation: INSTALLED first on PYTHONPATH."""
    return {**env, "PYTHONPATH": os.pathsep.join(filter(None, (str(INSTALLED), env.get("PYTHONPATH"))))}
