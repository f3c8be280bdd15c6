#!/usr/bin/env bash
# fishbench: the main job, and its whole set-up.
#   ./run_bench.sh [RUN ARGS]             python -m bench run --report RUN ARGS: the runs, then their report
#   ./run_bench.sh run|plan|report|compare|list|speed ARGS   that subcommand (python -m bench SUBCOMMAND ARGS)
#   ./run_bench.sh test [PYTEST ARGS]      the test suite
# On first use (or when pyproject.toml or BENCH_EXTRAS changes) it creates .venv and installs
# the project into it with the extras in BENCH_EXTRAS (default test,dask; add gpu for NVIDIA
# GPUs); after that it starts the work at once, with no pip traffic.
set -euo pipefail
cd "$(dirname "$0")"

venv=${BENCH_VENV:-.venv}
python=${PYTHON:-python3}
extras=${BENCH_EXTRAS:-test,dask}
stamp="$venv/.fishbench-installed"
want="$(sha256sum pyproject.toml | cut -c1-16) $extras"

if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        echo "error: fishbench needs Python >= 3.11; set PYTHON=/path/to/python3.11. Received: $python" >&2
        exit 2
    fi
    echo "setting up $venv with extras $extras (first use: installs TensorFlow and the rest, a few minutes)" >&2
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    # fishbench depended on tensorflow-cpu before tensorflow: one module in two distributions,
    # whose files clash. A venv from then loses both, and gets tensorflow alone below.
    if "$venv/bin/python" -m pip show --quiet tensorflow-cpu 2>/dev/null; then
        "$venv/bin/python" -m pip uninstall --quiet --yes tensorflow-cpu tensorflow
    fi
    # setuptools warns at every editable install that a folder named like a package may shadow
    # it; fishbench's entry points and workers never let one (README, "Two commands").
    PYTHONWARNINGS="ignore:Editable installation" "$venv/bin/python" -m pip install --quiet -e ".[$extras]"
    echo "$want" > "$stamp"
fi
py="$venv/bin/python"

case "${1:-}" in
    test) shift; exec "$py" -m pytest "$@" ;;
    run|plan|report|compare|list|speed|--version) exec "$py" -m bench "$@" ;;
esac
exec "$py" -m bench run --report "$@"
