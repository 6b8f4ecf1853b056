#!/usr/bin/env python3
"""Latency of the `wand` Jupyter kernel against ipykernel, through jupyter_client.

For each kernel: start -> kernel_info_reply (a fresh kernel per sample), then round trips of
cells (execute_request sent -> `idle` for it on iopub, so every output has arrived), after one
warm-up each:

- wand: `%status` (a magic), `%%sql SELECT 1 AS one` (polars SQL), `1 + 1` (scratch Python,
  in the Python worker);
- ipykernel: `%lsmagic` (a magic), `sqlite3` `SELECT 1` in memory (its nearest SQL cell),
  `1 + 1`.

Prints median and p90 in milliseconds and the ratios ipykernel / wand (above 1: wand is
faster). The wand kernel runs in a generated one-block project; ipykernel is the `python3`
kernel of the interpreter running this script, which needs jupyter_client and ipykernel.

    .venv/bin/python tests/bench/kernel_bench.py [--wand target/release/wand] [--starts 10] [--runs 50]

Start times are quantized by zmq's reconnect interval (100 ms): the client connects before the
kernel listens and retries. Numbers from a debug build (`target/debug/wand`, the default when no release build exists)
overstate the wand kernel's times; say which build was measured.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

LOAD = """\
@data_loader
def load(*args, **kwargs):
    return {'rows': 3}
"""


def make_project(root: Path) -> Path:
    project = root / "proj"
    (project / "pipelines" / "p").mkdir(parents=True)
    (project / "data_loaders").mkdir()
    (project / "metadata.yaml").write_text("project_uuid: proj\nvariables_dir: .mage_data\n")
    (project / "data_loaders" / "load.py").write_text(LOAD)
    (project / "pipelines" / "p" / "metadata.yaml").write_text(
        "blocks:\n- uuid: load\n  type: data_loader\n  language: python\n  upstream_blocks: []\n"
        "  downstream_blocks: []\nname: p\ntype: python\nuuid: p\n"
    )
    return project


def ms(samples):
    samples = sorted(samples)
    return statistics.median(samples) * 1000, samples[int(0.9 * (len(samples) - 1))] * 1000


def start(kernel_name, cwd):
    from jupyter_client.manager import KernelManager

    km = KernelManager(kernel_name=kernel_name)
    t0 = time.perf_counter()
    km.start_kernel(cwd=str(cwd), stderr=subprocess.DEVNULL)
    kc = km.client()
    kc.start_channels()
    msg_id = kc.kernel_info()  # queued by zmq until the kernel has bound its socket
    while kc.get_shell_msg(timeout=60)["parent_header"].get("msg_id") != msg_id:
        pass
    elapsed = time.perf_counter() - t0
    # Not timed: jupyter_client's readiness check also waits for 0.2 s of iopub silence.
    kc.wait_for_ready(timeout=60)
    return km, kc, elapsed


def round_trip(kc, code):
    t0 = time.perf_counter()
    msg_id = kc.execute(code)
    while True:
        msg = kc.get_iopub_msg(timeout=60)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "error":
            raise RuntimeError(f"{code!r} failed: {msg['content']['ename']}: {msg['content']['evalue']}")
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    elapsed = time.perf_counter() - t0
    reply = kc.get_shell_msg(timeout=60)
    if reply["content"]["status"] != "ok":
        raise RuntimeError(f"{code!r}: execute_reply {reply['content']['status']}")
    return elapsed


def measure(kernel_name, cwd, cells, starts, runs):
    results = {}
    times = []
    for _ in range(starts):
        km, kc, elapsed = start(kernel_name, cwd)
        times.append(elapsed)
        kc.stop_channels()
        km.shutdown_kernel(now=False)
    results["start -> kernel_info_reply"] = ms(times)
    km, kc, _ = start(kernel_name, cwd)
    try:
        for label, code in cells:
            round_trip(kc, code)  # warm-up (wand: the scratch worker starts here)
            results[label] = ms([round_trip(kc, code) for _ in range(runs)])
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    release = REPO / "target" / "release" / "wand"
    parser.add_argument("--wand", type=Path, default=release if release.exists() else REPO / "target" / "debug" / "wand")
    parser.add_argument("--starts", type=int, default=10)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="wand-kernel-bench-"))
    prefix = tmp / "prefix"
    subprocess.run([str(args.wand), "kernel", "install", "--prefix", str(prefix)], check=True, capture_output=True)
    os.environ["JUPYTER_PATH"] = str(prefix / "share" / "jupyter") + os.pathsep + os.environ.get("JUPYTER_PATH", "")
    os.environ.setdefault("WAND_PYTHON", sys.executable)
    os.environ["MAGE_DATA_DIR"] = str(tmp / "mage_data")
    project = make_project(tmp)
    cwd = project / "pipelines" / "p"

    print(f"wand: {args.wand} ({'release' if 'release' in args.wand.parts else 'DEBUG'} build); ipykernel: {sys.executable}")
    wand = measure("wand", cwd, [("magic", "%status"), ("sql", "%%sql\nSELECT 1 AS one"), ("python 1 + 1", "1 + 1")], args.starts, args.runs)
    ipy = measure(
        "python3",
        cwd,
        [("magic", "%lsmagic"), ("sql", "import sqlite3\nsqlite3.connect(':memory:').execute('SELECT 1 AS one').fetchall()"), ("python 1 + 1", "1 + 1")],
        args.starts,
        args.runs,
    )
    print(f"{'':28} {'wand p50':>9} {'p90':>8} {'ipykernel p50':>14} {'p90':>8} {'ratio p50':>10}")
    for label in wand:
        (w50, w90), (i50, i90) = wand[label], ipy[label]
        print(f"{label:28} {w50:9.1f} {w90:8.1f} {i50:14.1f} {i90:8.1f} {i50 / w50:10.2f}")


if __name__ == "__main__":
    main()
