#!/usr/bin/env python3
"""Benchmark: `wand run --changed` on a generated 200-block pipeline.

1. Runs the whole pipeline once (Python blocks in the worker).
2. Times `wand run --changed` with nothing changed (goal: at most 50 ms): only fingerprints
   are compared, nothing runs.
3. Edits one block in the middle and checks, from the --json events, that exactly that block
   and its descendants ran.

Usage: tests/bench/changed_bench.py [--wand target/release/wand] [--blocks 200] [--runs 21]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def upstream_of(i: int) -> list:
    ups = [] if i == 0 else [i - 1]
    if i % 5 == 0 and i >= 10:
        ups.append(i // 2)
    return ups


def generate(root: Path, n: int) -> None:
    for folder in ("pipelines/gen", "data_loaders", "transformers"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "metadata.yaml").write_text("project_type: standalone\nvariables_dir: .mage_data\n")
    downstream = {i: [] for i in range(n)}
    for i in range(n):
        for u in upstream_of(i):
            downstream[u].append(i)
    lines = ["blocks:"]
    for i in range(n):
        kind, folder = ("data_loader", "data_loaders") if i == 0 else ("transformer", "transformers")
        lines += [f"- uuid: b{i:03d}", f"  type: {kind}", "  language: python",
                  f"  upstream_blocks: [{', '.join(f'b{u:03d}' for u in upstream_of(i))}]",
                  f"  downstream_blocks: [{', '.join(f'b{d:03d}' for d in downstream[i])}]"]
        if i == 0:
            code = "@data_loader\ndef load(*args, **kwargs):\n    return {'value': 1}\n"
        else:
            code = f"@transformer\ndef step(first, *args, **kwargs):\n    return {{'value': first['value'] + {i}}}\n"
        (root / folder / f"b{i:03d}.py").write_text(code)
    (root / "pipelines/gen/metadata.yaml").write_text("\n".join(lines) + "\nname: gen\ntype: python\n")


def descendants(start: int, n: int) -> set:
    found, todo = set(), [start]
    while todo:
        node = todo.pop()
        for i in range(n):
            if node in upstream_of(i) and i not in found:
                found.add(i)
                todo.append(i)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wand", default=str(REPO / "target" / "release" / "wand"))
    parser.add_argument("--blocks", type=int, default=200)
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "gen_project"
        generate(root, args.blocks)
        base = [args.wand, "run", str(root), "gen", "--no-test"]
        first = subprocess.run(base, capture_output=True, text=True)
        if first.returncode != 0:
            print(first.stdout[-2000:], first.stderr[-2000:], file=sys.stderr)
            return 1
        samples = []
        for _ in range(args.runs):
            start = time.perf_counter()
            proc = subprocess.run(base + ["--changed", "--json"], capture_output=True, text=True)
            samples.append(time.perf_counter() - start)
            started = [e for e in map(json.loads, proc.stdout.splitlines()) if e.get("event") == "block_started"]
            if proc.returncode != 0 or started:
                print(f"--changed with nothing changed ran {len(started)} blocks (exit {proc.returncode})", file=sys.stderr)
                return 1
        edited = args.blocks // 2
        path = root / "transformers" / f"b{edited:03d}.py"
        path.write_text(path.read_text().replace(f"+ {edited}}}", f"+ {edited} + 1000}}"))
        proc = subprocess.run(base + ["--changed", "--json"], capture_output=True, text=True)
        ran = {int(e["block"][1:]) for e in map(json.loads, proc.stdout.splitlines()) if e.get("event") == "block_started"}
        expected = {edited} | descendants(edited, args.blocks)
    median_ms = statistics.median(samples) * 1000
    print(f"{args.blocks} blocks, nothing changed: wand run --changed median {median_ms:.1f} ms, p90 {sorted(samples)[int(len(samples) * 0.9)] * 1000:.1f} ms over {args.runs} runs (goal <= 50 ms)")
    print(f"after editing b{edited:03d}: {len(ran)} blocks ran, expected exactly {len(expected)} (it and its descendants): {'OK' if ran == expected else 'MISMATCH'}")
    return 0 if ran == expected else 1


if __name__ == "__main__":
    sys.exit(main())
