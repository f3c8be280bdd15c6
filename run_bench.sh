#!/usr/bin/env bash
# fishbench: the main job, and its whole set-up.
#   ./run_bench.sh [RUN ARGS]        python -m bench run --report RUN ARGS: the runs, then their report
#   ./run_bench.sh test [PYTEST ARGS] the test suite
# On first use (or when pyproject.toml changes) it creates .venv and installs the project
# into it; after that it starts the work at once, with no pip traffic.
set -euo pipefail
cd "$(dirname "$0")"

venv=${BENCH_VENV:-.venv}
python=${PYTHON:-python3}
stamp="$venv/.fishbench-installed"
want=$(sha256sum pyproject.toml | cut -c1-16)

if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        echo "error: fishbench needs Python >= 3.11; set PYTHON=/path/to/python3.11. Received: $python" >&2
        exit 2
    fi
    echo "setting up $venv (first use: installs TensorFlow and the rest, a few minutes)" >&2
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet -e ".[test,dask]"
    echo "$want" > "$stamp"
fi
py="$venv/bin/python"

if [ "${1:-}" = test ]; then
    shift
    exec "$py" -m pytest "$@"
fi

exec "$py" -m bench run --report "$@"
