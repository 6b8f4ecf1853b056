#!/usr/bin/env python3
"""Latency of the `wand` Jupyter kernel against ipykernel, through jupyter_client.

For each kernel, with a fresh kernel per sample:

- launch -> kernel_info_reply: from the launch of the kernel's process to its first
  kernel_info_reply, the client doing what `KernelManager.start_kernel()` and
  `client.start_channels()` do, minus two client-side delays that are the same for every
  kernel: the fixed 10 ms `asyncio.sleep` that `start_kernel()` ends with (jupyter_client's
  `in_pending_state`), and zmq's reconnect interval (100 ms plus up to 100 ms of jitter: a
  client that connects before the kernel listens retries only then), which here is 1 ms, so a
  kernel is seen ready about 1 ms after it listens instead of at zmq's next retry. This is the
  kernel's start time, plus the client's own work after the launch (about 2 ms).
- start_kernel() -> kernel_info_reply: what a `KernelManager` user waits, from calling
  `start_kernel()` (kernelspec, ports, connection file, launch, the 10 ms sleep) to the reply,
  with zmq's default reconnect interval. For a kernel that starts in a few milliseconds this
  is mostly jupyter_client; for one that takes longer than the sleep it is rounded up to
  zmq's next retry.

Then round trips of cells (execute_request sent -> `idle` for it on iopub, so every output has
arrived), after one warm-up each:

- wand: `%help` (the list of magics, as `%lsmagic`), `%status` (every block's state: a magic
  that reads the project), `%%sql SELECT 1 AS one` (polars SQL), `1 + 1` (scratch Python, in
  the Python worker), `%%block load` (a Python block cell: the engine runs the loader in the
  worker the kernel keeps, stores its output and provenance, writes the run record and shows
  the output);
- ipykernel: `%lsmagic` (for both magics), `sqlite3` `SELECT 1` in memory (its nearest SQL
  cell), `1 + 1`, the loader's function defined and called (what the block cell does, minus
  storing it).

Prints median and p90 in milliseconds and the ratios wand / ipykernel of the medians (below
1: wand is faster; the goals are 0.05x for the start, 0.1x for a magic or SQL cell, 0.5x for
Python). The wand kernel runs in a generated one-block project; ipykernel is the `python3`
kernel of the interpreter running this script, which needs jupyter_client and ipykernel.

    .venv/bin/python tests/bench/kernel_bench.py [--wand target/release/wand] [--starts 10] [--runs 50]

Numbers from a debug build (`target/debug/wand`, the default when no release build exists)
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

import zmq

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


def wait_for_reply(kc, msg_id):
    while kc.get_shell_msg(timeout=60)["parent_header"].get("msg_id") != msg_id:
        pass


def start_from_launch(kernel_name, cwd):
    """`KernelManager.start_kernel()` in its steps (pre-start, launch, post-start), without the
    sleep it ends with; timed from the launch of the process to the kernel_info_reply."""
    from jupyter_client.manager import KernelManager

    km = KernelManager(kernel_name=kernel_name)
    kernel_cmd, kw = km.pre_start_kernel(cwd=str(cwd), stderr=subprocess.DEVNULL)  # ports, connection file
    kc = km.client()
    kc.context.setsockopt(zmq.RECONNECT_IVL, 1)  # a default for the sockets this context makes
    t0 = time.perf_counter()
    km._launch_kernel(kernel_cmd, **kw)  # start_kernel()'s own launch step (jupyter_client 8)
    km.post_start_kernel(**kw)
    kc.start_channels()
    wait_for_reply(kc, kc.kernel_info())  # queued by zmq until the kernel has bound its socket
    elapsed = time.perf_counter() - t0
    # Not timed: jupyter_client's readiness check also waits for 0.2 s of iopub silence.
    kc.wait_for_ready(timeout=60)
    return km, kc, elapsed


def start_kernel(kernel_name, cwd):
    """As a `KernelManager` user starts a kernel; timed from `start_kernel()` to the reply."""
    from jupyter_client.manager import KernelManager

    km = KernelManager(kernel_name=kernel_name)
    t0 = time.perf_counter()
    km.start_kernel(cwd=str(cwd), stderr=subprocess.DEVNULL)
    kc = km.client()
    kc.start_channels()
    wait_for_reply(kc, kc.kernel_info())
    elapsed = time.perf_counter() - t0
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
    for label, start in [("launch -> kernel_info_reply", start_from_launch), ("start_kernel() -> kernel_info_reply", start_kernel)]:
        times = []
        for _ in range(starts):
            km, kc, elapsed = start(kernel_name, cwd)
            times.append(elapsed)
            kc.stop_channels()
            km.shutdown_kernel(now=False)
        results[label] = ms(times)
    km, kc, _ = start_kernel(kernel_name, cwd)
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
    wand = measure(
        "wand",
        cwd,
        [
            ("magic: %help / %lsmagic", "%help"),
            ("magic: %status / %lsmagic", "%status"),
            ("sql", "%%sql\nSELECT 1 AS one"),
            ("python 1 + 1", "1 + 1"),
            ("python block cell", "%%block load"),
        ],
        args.starts,
        args.runs,
    )
    sqlite = "import sqlite3\nsqlite3.connect(':memory:').execute('SELECT 1 AS one').fetchall()"
    ipy = measure(
        "python3",
        cwd,
        [("magic: %help / %lsmagic", "%lsmagic"), ("sql", sqlite), ("python 1 + 1", "1 + 1"), ("python block cell", LOAD.replace("@data_loader\n", "") + "load()")],
        args.starts,
        args.runs,
    )
    ipy["magic: %status / %lsmagic"] = ipy["magic: %help / %lsmagic"]
    print(f"{'':36} {'wand p50':>9} {'p90':>8} {'ipykernel p50':>14} {'p90':>8} {'wand/ipykernel':>15}")
    for label in wand:
        (w50, w90), (i50, i90) = wand[label], ipy[label]
        print(f"{label:36} {w50:9.2f} {w90:8.2f} {i50:14.2f} {i90:8.2f} {w50 / i50:14.3f}x")


if __name__ == "__main__":
    main()
