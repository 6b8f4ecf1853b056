#!/usr/bin/env bash
# The Jupyter kernel's real-client tests: builds `wand` (debug), makes sure the test packages
# are in .venv, runs pytest. pytest's closing line is the last thing printed.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build -q -p wand-kernel --bin wand
[ -x .venv/bin/python ] || python3 -m venv .venv
if ! .venv/bin/python -c 'import jupyter_client, jupyter_kernel_test, nbclient, nbformat, pytest, pandas, pyarrow' 2>/dev/null; then
  .venv/bin/python -m pip install -q jupyter_client jupyter_kernel_test nbclient nbformat ipykernel pytest pandas pyarrow
fi
export WAND_PYTHON="$PWD/.venv/bin/python"
exec .venv/bin/python -m pytest -q -p no:cacheprovider tests/jupyter "$@"
