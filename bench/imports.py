"""Which code a run executes: this installation's ``bench`` and ``models``, and the user's own files.

No shadowing. A folder with its own ``models/`` (or ``bench/``) package must not replace the
installed one, so its modules cannot be imported as ``models.*``: the error says to rename it. The ``fishbench`` script never puts the current folder on ``sys.path``, and
``python -m bench`` drops it when it is not the checkout (``bench/__main__.py``); a worker
is started with ``python -P`` (nothing prepended) and ``INSTALLED`` first on its
``PYTHONPATH`` (``child_env``), so it runs the runner's code wherever it was started.

The user's models and datasets. ``--import FILE_OR_MODULE`` (``[run] imports``) names ``.py``
files (by path) or modules (by dotted name) that register models with
``@models.register_model`` or datasets with ``@bench.data.register_dataset``. The process
that loads the profile imports them (``import_all``); each run of a model registered outside the
``models`` package carries that model's module, file and the file's SHA-256 (``model_code``),
which are part of the run's identity: an edited file is another model. A run on a registered
dataset carries the same of the dataset's module (``dataset_code``), as execution information
only: the data hash already identifies its arrays. The run's worker imports those files again,
after checking their bytes (``load_code``).
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
from contextlib import contextmanager
from pathlib import Path

from bench.data import registry

# The folder that holds the running bench and models packages: site-packages, or a checkout.
INSTALLED = Path(__file__).resolve().parent.parent


def child_env(env: dict) -> dict:
    """``env`` for a ``python -P`` child that must run this installation: INSTALLED first on PYTHONPATH."""
    return {**env, "PYTHONPATH": os.pathsep.join(filter(None, (str(INSTALLED), env.get("PYTHONPATH"))))}


def sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def import_all(items: tuple[str, ...] | None) -> None:
    """Import each item: a name ending in ``.py`` is a file, imported as the module named by
    its stem; anything else a module, imported by its dotted name from ``sys.path``.

    Importing an item again in the same process does nothing.

    Raises:
        ValueError: a missing file, a module that is not found, a file whose stem names
            another module already imported, any error the code raised, or code that exits
            (``sys.exit``, ``os._exit``) while imported, in one line.
    """
    for item in items or ():
        try:
            with _exits_raise():
                if item.endswith(".py"):
                    _load_file(Path(item).resolve(), Path(item).stem)
                else:
                    importlib.import_module(item)
        except (Exception, SystemExit) as error:  # noqa: BLE001 - the user's code may do anything; it is bad input
            raise ValueError(f"cannot import {item!r}: {_what_happened(error)}. Accepted: a .py file's path or "
                             f"an importable module's name, whose code registers and returns. Received: import={item!r}") from None


class _Exited(SystemExit):
    """``os._exit`` called by code being imported (see ``_exits_raise``)."""


@contextmanager
def _exits_raise():
    """``os._exit`` raises ``_Exited`` while the block runs, so that an imported file that calls
    it is an error to report, not the end of this process without a word."""
    def exit_now(status):
        raise _Exited(status)

    os_exit, os._exit = os._exit, exit_now
    try:
        yield
    finally:
        os._exit = os_exit


def _what_happened(error: BaseException) -> str:
    if isinstance(error, SystemExit):
        call = "os._exit" if isinstance(error, _Exited) else "sys.exit"
        return f"it called {call}({error.code!r}) while being imported"
    if isinstance(error, ModuleNotFoundError) and (error.name or "").startswith("models."):
        return (f"{type(error).__name__}: {_first_line(error)}: `models` is fishbench's model registry, and a "
                "package of yours named models cannot stand beside it; rename yours (say mymodels) and import it "
                "by that name")
    return f"{type(error).__name__}: {_first_line(error)}"


def _first_line(error: BaseException) -> str:
    return str(error).splitlines()[0] if str(error) else ""


def _load_file(path: Path, name: str) -> None:
    """Execute the file at ``path`` as module ``name`` (in ``sys.modules``), unless it already is."""
    if not path.is_file():
        raise FileNotFoundError(f"no file {path}")
    loaded = sys.modules.get(name)
    if loaded is not None:
        if getattr(loaded, "__file__", None) and Path(loaded.__file__).resolve() == path:
            return
        raise ImportError(f"a module named {name!r} is already imported from {getattr(loaded, '__file__', None)}; "
                          f"rename the file")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise


def model_code(model: str) -> dict:
    """What a run of registered ``model`` must import first, for its spec (``RunSpec.model_code``):
    ``module_code`` of the module that registers it."""
    import models  # deferred for start-up time: Keras takes seconds

    return module_code(models.module(model))


def dataset_code(dataset: str) -> dict:
    """What a run on ``dataset`` must import first, for its spec (``RunSpec.dataset_code``):
    ``module_code`` of the module that registers it; {} for a dataset that is not registered."""
    return module_code(registry.function(dataset).__module__) if registry.registered(dataset) else {}


def module_code(module: str) -> dict:
    """What a worker must import for ``module``'s registrations to exist (``load_code``).

    Returns:
        {} for a module of this installation's packages (``models``, ``bench``); else
        {"module": its name, "file": its file (absolute), "sha256": of the file's bytes}.
    """
    if module.partition(".")[0] in ("models", "bench"):
        return {}
    file = Path(sys.modules[module].__file__).resolve()
    return {"module": module, "file": str(file), "sha256": sha256(file)}


def load_code(code: dict) -> None:
    """In a worker: import the user's module a run's model or dataset comes from, as
    ``module_code`` saw it.

    A top-level module is executed from its file, which need not be on this process's path;
    a module of a package is imported by name, so its package must be importable here.

    Raises:
        ValueError: the file is gone or its bytes changed since the run was planned.
    """
    if not code:
        return
    file = Path(code["file"])
    if not file.is_file() or sha256(file) != code["sha256"]:
        raise ValueError(f"{file} is gone or changed since the run was planned; the same command plans it again. "
                         f"Received: sha256={code['sha256']}")
    if "." in code["module"]:
        importlib.import_module(code["module"])
    else:
        _load_file(file, code["module"])
