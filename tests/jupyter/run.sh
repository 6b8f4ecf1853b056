#!/usr/bin/env bash
# The Jupyter kernel's real-client tests: builds `wand` (debug), makes sure the test packages
# are in .venv, runs the JupyterLab smoke test in headless Chromium (JupyterLab in its own venv,
# .venv-lab, so its pins stay apart), then pytest, whose closing line is the last thing printed.
set -euo pipefail
cd "$(dirname "$0")/../.."
# scripts/test sets WAND_SKIP_CARGO=1: `cargo test --workspace` built `wand` already.
[ "${WAND_SKIP_CARGO:-0}" = 1 ] || cargo build -q -p wand-kernel --bin wand
[ -x .venv/bin/python ] || python3 -m venv .venv
if ! .venv/bin/python -c 'import jupyter_client, jupyter_kernel_test, nbclient, nbformat, pytest, pandas, pyarrow, tornado' 2>/dev/null; then
  .venv/bin/python -m pip install -q jupyter_client jupyter_kernel_test nbclient nbformat ipykernel pytest pandas pyarrow tornado
fi
export WAND_PYTHON="$PWD/.venv/bin/python"

lab_status=0
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null
fi
if [ ! -x .venv-lab/bin/jupyter ] || ! .venv-lab/bin/python -c 'import jupyterlab' 2>/dev/null; then
  python3 -m venv .venv-lab
  .venv-lab/bin/python -m pip install -q --disable-pip-version-check jupyterlab
fi
echo "== JupyterLab in headless Chromium"
.venv/bin/python tests/jupyter/lab_check.py --jupyter .venv-lab/bin/jupyter || lab_status=$?

pytest_status=0
.venv/bin/python -m pytest -q -p no:cacheprovider tests/jupyter "$@" || pytest_status=$?
[ "$lab_status" -eq 0 ] || echo "JupyterLab smoke test failed (exit $lab_status)"
[ "$lab_status" -eq 0 ] && [ "$pytest_status" -eq 0 ]
