#!/usr/bin/env python3
"""Latency and memory of wand-lsp against yaml-language-server on the same generated workspace.

A workspace of 100 pipelines x 10 blocks (a chain per pipeline, one Python file per block) is
generated in a temp dir. For each server: initialize -> first publishDiagnostics of the opened
pipeline file; then 500 one-character didChange edits that alternately break and repair an
upstream uuid, each timed until the server's next publishDiagnostics for that file; then the
server's RSS. Prints p50/p99 and the ratios (yaml-language-server / wand-lsp).

    python3 tests/bench/lsp_bench.py [--wand target/release/wand-lsp] [--edits 500] [--no-yamlls]

wand-lsp should be a release build (`cargo build --release -p wand-lsp`). yaml-language-server
is installed with npm into a temp dir unless --yamlls names its executable.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import queue
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def generate(root: Path, pipelines=100, blocks=10):
    (root / "metadata.yaml").write_text("project_type: standalone\nvariables_dir: .mage_data\n")
    (root / "io_config.yaml").write_text("version: 0.1.1\ndefault:\n  POSTGRES_HOST: localhost\n")
    (root / "transformers").mkdir(parents=True)
    for p in range(pipelines):
        lines = ["blocks:"]
        for b in range(blocks):
            uuid = f"b_{p}_{b}"
            up = f"[b_{p}_{b - 1}]" if b else "[]"
            down = f"[b_{p}_{b + 1}]" if b + 1 < blocks else "[]"
            lines += [f"- uuid: {uuid}", "  type: transformer", "  language: python", f"  upstream_blocks: {up}", f"  downstream_blocks: {down}"]
            args = "data, *args, **kwargs" if b else "*args, **kwargs"
            (root / "transformers" / f"{uuid}.py").write_text(f"@transformer\ndef transform({args}):\n    return {'data' if b else 1}\n")
        lines.append(f"name: p_{p}")
        folder = root / "pipelines" / f"p_{p}"
        folder.mkdir(parents=True)
        (folder / "metadata.yaml").write_text("\n".join(lines) + "\n")


class Server:
    def __init__(self, cmd, cwd):
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=cwd)
        self.messages = queue.Queue()
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        out = self.proc.stdout
        while True:
            length = None
            while True:
                line = out.readline()
                if not line:
                    return
                line = line.strip()
                if not line:
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            body = json.loads(out.read(length))
            if "method" in body and "id" in body:  # a request from the server
                self.send({"jsonrpc": "2.0", "id": body["id"], "result": None})
                continue
            self.messages.put((time.perf_counter(), body))

    def send(self, message):
        data = json.dumps(message).encode()
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(data) + data)
        self.proc.stdin.flush()

    def request(self, method, params):
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        while True:
            _, message = self.messages.get(timeout=120)
            if message.get("id") == self.next_id and "method" not in message:
                return message.get("result")

    def notify(self, method, params):
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def wait_diagnostics(self, uri, timeout=60):
        while True:
            at, message = self.messages.get(timeout=timeout)
            if message.get("method") == "textDocument/publishDiagnostics" and message["params"]["uri"] == uri:
                return at

    def rss_mb(self):
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def close(self):
        try:
            self.request("shutdown", None)
            self.notify("exit", None)
            self.proc.wait(timeout=5)
        except Exception:
            self.proc.kill()


def run(name, cmd, root: Path, edits: int, settings=None):
    target = root / "pipelines" / "p_0" / "metadata.yaml"
    uri = target.as_uri()
    text = target.read_text()
    start = time.perf_counter()
    server = Server(cmd, root)
    server.request("initialize", {"processId": os.getpid(), "rootUri": root.as_uri(), "workspaceFolders": [{"uri": root.as_uri(), "name": "bench"}],
                                  "capabilities": {"textDocument": {"publishDiagnostics": {"relatedInformation": True}}}})
    server.notify("initialized", {})
    if settings is not None:
        server.notify("workspace/didChangeConfiguration", {"settings": settings})
    server.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "yaml", "version": 1, "text": text}})
    first = server.wait_diagnostics(uri) - start
    # The edit point: right after `b_0_0` in `upstream_blocks: [b_0_0]` of b_0_1.
    line_no = next(i for i, line in enumerate(text.splitlines()) if line == "  upstream_blocks: [b_0_0]")
    col = len("  upstream_blocks: [b_0_0")
    latencies = []
    for idx in range(edits):
        if idx % 2 == 0:
            change = {"range": {"start": {"line": line_no, "character": col}, "end": {"line": line_no, "character": col}}, "text": "x"}
        else:
            change = {"range": {"start": {"line": line_no, "character": col}, "end": {"line": line_no, "character": col + 1}}, "text": ""}
        sent = time.perf_counter()
        server.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": idx + 2}, "contentChanges": [change]})
        latencies.append((server.wait_diagnostics(uri) - sent) * 1000)
    rss = server.rss_mb()
    server.close()
    latencies.sort()
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(f"{name:22s} first diagnostics {first * 1000:8.1f} ms   didChange p50 {p50:7.2f} ms   p99 {p99:7.2f} ms   RSS {rss:7.1f} MB")
    return {"first_ms": first * 1000, "p50_ms": p50, "p99_ms": p99, "rss_mb": rss}


def yamlls_command(explicit):
    if explicit:
        return [explicit, "--stdio"]
    found = shutil.which("yaml-language-server")
    if found:
        return [found, "--stdio"]
    prefix = Path(tempfile.mkdtemp(prefix="yamlls-"))
    subprocess.run(["npm", "install", "--silent", "--prefix", str(prefix), "yaml-language-server"], check=True)
    return [str(prefix / "node_modules" / ".bin" / "yaml-language-server"), "--stdio"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--wand", default=str(REPO / "target" / "release" / "wand-lsp"))
    parser.add_argument("--yamlls")
    parser.add_argument("--no-yamlls", action="store_true")
    parser.add_argument("--edits", type=int, default=500)
    args = parser.parse_args()
    if not Path(args.wand).exists():
        sys.exit(f"{args.wand} not found: cargo build --release -p wand-lsp")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        root.mkdir()
        generate(root)
        print(f"workspace: 100 pipelines x 10 blocks, {args.edits} edits")
        wand = run("wand-lsp", [str(Path(args.wand).resolve())], root, args.edits)
        if args.no_yamlls:
            return
        yaml = run("yaml-language-server", yamlls_command(args.yamlls), root, args.edits, settings={"yaml": {"validate": True}})
        for key in ["first_ms", "p50_ms", "p99_ms", "rss_mb"]:
            print(f"ratio yaml-language-server / wand-lsp {key:9s} {yaml[key] / wand[key]:8.2f}")


if __name__ == "__main__":
    main()
