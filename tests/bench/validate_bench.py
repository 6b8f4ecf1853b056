#!/usr/bin/env python3
"""Benchmark: `wand validate` on a generated project of 100 pipelines x 10 blocks, against the
floor that Mage pays just to read the same files (PyYAML `full_load` of every pipeline
metadata.yaml plus reading every block file), measured in the same run. Prints the ratio.

Usage: tests/bench/validate_bench.py [--wand target/release/wand] [--runs 15]
Needs PyYAML (`pip install pyyaml`). Build first: cargo build --release -p wand-kernel --bin wand
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

LOADER = '''import io
import pandas as pd
if 'data_loader' not in globals():
    from mage_ai.data_preparation.decorators import data_loader
if 'test' not in globals():
    from mage_ai.data_preparation.decorators import test


@data_loader
def load_data(*args, **kwargs):
    """Load rows for pipeline {p}."""
    url = kwargs.get('url', 'https://example.invalid/{p}.csv')
    return pd.DataFrame({{'id': range(10), 'value': [i * {p} for i in range(10)]}})


@test
def test_output(output, *args) -> None:
    assert output is not None, 'The output is undefined'
'''

TRANSFORMER = '''if 'transformer' not in globals():
    from mage_ai.data_preparation.decorators import transformer
if 'test' not in globals():
    from mage_ai.data_preparation.decorators import test


@transformer
def transform({params}, *args, **kwargs):
    """Step {b} of pipeline {p}."""
    df = {first}
    df = df[df['value'] >= 0]
    df['step_{b}'] = df['value'] * {b}
    return df


@test
def test_output(output, *args) -> None:
    assert output is not None, 'The output is undefined'
    assert len(output.columns) > 1
'''

EXPORTER = '''if 'data_exporter' not in globals():
    from mage_ai.data_preparation.decorators import data_exporter


@data_exporter
def export_data(data, *args, **kwargs):
    print(len(data))
'''


def generate(root: Path, n_pipelines: int, n_blocks: int) -> None:
    for folder in ("pipelines", "data_loaders", "transformers", "data_exporters"):
        (root / folder).mkdir(parents=True)
    (root / "metadata.yaml").write_text("project_type: standalone\nvariables_dir: .mage_data\n")
    (root / "io_config.yaml").write_text("version: 0.1.1\ndefault:\n  POSTGRES_HOST: localhost\n")
    for p in range(n_pipelines):
        uuids = [f"p{p}_load"] + [f"p{p}_step{b}" for b in range(1, n_blocks - 1)] + [f"p{p}_export"]
        # A DAG, not a chain: step b reads step b-1, and every third step also reads the loader.
        upstream = {uuids[0]: []}
        for b in range(1, n_blocks):
            ups = [uuids[b - 1]]
            if b % 3 == 0 and b > 1:
                ups.append(uuids[0])
            upstream[uuids[b]] = ups
        downstream = {u: [v for v in uuids if u in upstream[v]] for u in uuids}
        lines = ["blocks:"]
        for b, uuid in enumerate(uuids):
            kind = "data_loader" if b == 0 else ("data_exporter" if b == n_blocks - 1 else "transformer")
            lines += [
                "- all_upstream_blocks_executed: true", "  color: null", "  configuration: {}",
                f"  downstream_blocks: {downstream[uuid]}".replace("'", ""), "  executor_config: null",
                "  executor_type: local_python", "  has_callback: false", "  language: python",
                f"  name: {uuid}", "  retry_config: null", "  status: not_executed", "  timeout: null",
                f"  type: {kind}", f"  upstream_blocks: {upstream[uuid]}".replace("'", ""), f"  uuid: {uuid}",
            ]
            folder = {"data_loader": "data_loaders", "transformer": "transformers", "data_exporter": "data_exporters"}[kind]
            if kind == "data_loader":
                code = LOADER.format(p=p)
            elif kind == "transformer":
                params = ", ".join(f"df_{i + 1}" for i in range(len(upstream[uuid])))
                code = TRANSFORMER.format(p=p, b=b, params=params, first="df_1")
            else:
                code = EXPORTER
            (root / folder / f"{uuid}.py").write_text(code)
        lines += ["callbacks: []", "conditionals: []", "executor_count: 1", f"name: pipeline {p}",
                  "notification_config: {}", "retry_config: {}", "tags: []", "type: python", f"uuid: p{p}", "widgets: []"]
        (root / "pipelines" / f"p{p}").mkdir()
        (root / "pipelines" / f"p{p}" / "metadata.yaml").write_text("\n".join(lines) + "\n")


def mage_floor(root: Path) -> None:
    """What Mage does at the least to see the project: full_load every pipeline, read every block file."""
    for metadata in sorted((root / "pipelines").glob("*/metadata.yaml")):
        with open(metadata) as f:
            config = yaml.full_load(f)
        for block in config["blocks"]:
            folder = "custom" if block["type"] == "custom" else block["type"] + "s"
            with open(root / folder / f"{block['uuid']}.py") as f:
                f.read()


def median_seconds(fn, runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wand", default=str(Path(__file__).resolve().parents[2] / "target" / "release" / "wand"))
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--pipelines", type=int, default=100)
    parser.add_argument("--blocks", type=int, default=10)
    args = parser.parse_args()
    if not os.access(args.wand, os.X_OK):
        print(f"no wand binary at {args.wand}: cargo build --release -p wand-kernel --bin wand", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "bench_project"
        generate(root, args.pipelines, args.blocks)
        check = subprocess.run([args.wand, "validate", str(root)], capture_output=True, text=True)
        if check.returncode != 0:
            print(check.stdout[-2000:], check.stderr[-2000:], file=sys.stderr)
            print("the generated project is expected to validate clean", file=sys.stderr)
            return 1
        run_wand = lambda: subprocess.run([args.wand, "validate", str(root)], stdout=subprocess.DEVNULL, check=True)
        run_floor_process = lambda: subprocess.run(
            [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
             f"from validate_bench import mage_floor; from pathlib import Path; mage_floor(Path({str(root)!r}))"],
            check=True)
        run_wand()
        mage_floor(root)
        wand = median_seconds(run_wand, args.runs)
        floor = median_seconds(lambda: mage_floor(root), args.runs)
        floor_process = median_seconds(run_floor_process, max(3, args.runs // 3))
    n = args.pipelines * args.blocks
    print(f"project: {args.pipelines} pipelines x {args.blocks} blocks ({n} block files), median of {args.runs} runs")
    print(f"wand validate (whole process, every check):       {wand * 1000:8.1f} ms")
    print(f"Mage floor in-process (PyYAML full_load + reads): {floor * 1000:8.1f} ms")
    print(f"Mage floor as a process (python start + import):  {floor_process * 1000:8.1f} ms")
    print(f"ratio wand / in-process floor: {wand / floor:.3f}x (goal <= 0.5x)")
    print(f"ratio wand / process floor:    {wand / floor_process:.3f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
