"""The wings' import contract (pyproject.toml, ``[tool.importlinter]``): bench's layers import
downwards only and models knows nothing of bench, as ``lint-imports`` checks; a function-level
import of bench or models inside bench is there for start-up time only, and says so.
"""
import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"  # installed by the test extra beside this Python
DEFERRED = "deferred for start-up time"

needs_lint_imports = pytest.mark.skipif(not LINT_IMPORTS.exists(), reason=f"no lint-imports beside {sys.executable}")


def lint_imports(tree: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` on the bench and models packages of ``tree``, with its pyproject.toml's contracts."""
    env = {**os.environ, "PYTHONPATH": str(tree)}  # that tree's packages, not the installed ones
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo", str(tree / "pyproject.toml")], check=False,
                          cwd=tree, env=env, capture_output=True, text=True, timeout=300)


def copy_of_the_packages(folder: Path) -> Path:
    for name in ("bench", "models"):
        shutil.copytree(ROOT / name, folder / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", folder)
    return folder


@needs_lint_imports
def test_the_packages_keep_the_import_contracts():
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Contracts: 2 kept, 0 broken." in done.stdout


@needs_lint_imports
@pytest.mark.parametrize("module, line, contract", [
    ("bench/data/registry.py", "from bench.run import runner", "bench's wings import downwards only"),
    ("models/__init__.py", "from bench import spec", "models knows nothing of bench"),
], ids=["upwards in bench", "models imports bench"])
def test_an_import_against_the_contract_is_reported_broken(tmp_path, module, line, contract):
    tree = copy_of_the_packages(tmp_path)
    path = tree / module
    path.write_text(f"{path.read_text()}\n{line}  # noqa: E402 - the deliberate violation\n")
    done = lint_imports(tree)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Contracts: 1 kept, 1 broken." in done.stdout
    assert f"{contract} BROKEN" in done.stdout


def function_level_imports(path: Path) -> list[tuple[int, str]]:
    """(line, source) of each import of a bench or models module inside a function of ``path``."""
    source = path.read_text()
    found = set()
    for function in ast.walk(ast.parse(source)):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(function):
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom) else
                     [alias.name for alias in node.names] if isinstance(node, ast.Import) else [])
            if any(name.split(".")[0] in ("bench", "models") for name in names):
                found.add((node.lineno, ast.get_source_segment(source, node, padded=False)))
    return sorted(found)


def test_every_function_level_import_of_bench_or_models_in_bench_says_it_is_deferred_for_start_up_time():
    unexplained = []
    for path in sorted((ROOT / "bench").rglob("*.py")):
        lines = path.read_text().splitlines()
        for lineno, statement in function_level_imports(path):
            end = lineno + statement.count("\n")
            if not any(DEFERRED in line for line in lines[lineno - 1:end]):
                unexplained.append(f"{path.relative_to(ROOT)}:{lineno}: {statement}")
    assert unexplained == [], f"function-level imports without '# {DEFERRED}: <reason>'"
    assert function_level_imports(ROOT / "bench" / "run" / "worker.py")  # the check sees them
