import os
import queue
import struct
import subprocess
import sys
import threading
import json

import pytest

KERNEL_PY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Worker:
    """Minimal client for the worker protocol (see PROTOCOL.md)."""

    def __init__(self, cwd=None, env=None):
        e = dict(os.environ)
        e["PYTHONPATH"] = KERNEL_PY
        e.pop("MAGE_REPO_PATH", None)
        if env:
            e.update(env)
        self.proc = subprocess.Popen(
            [sys.executable, "-u", "-m", "wand_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd or "/",
            env=e,
        )
        self.msgs = queue.Queue()
        # `output_stored` messages (PROTOCOL.md 6.6.6) can come during a later request: kept apart.
        self.stored = queue.Queue()
        self.stderr_chunks = []
        threading.Thread(target=self._read_out, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()
        self.next_id = 1
        self.hello = self.recv()
        assert self.hello["type"] == "hello", self.hello

    def _read_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.proc.stdout.read(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    def _read_out(self):
        while True:
            raw = self._read_exact(4)
            if raw is None:
                self.msgs.put(None)
                return
            (hlen,) = struct.unpack(">I", raw)
            header = json.loads(self._read_exact(hlen).decode("utf-8"))
            (plen,) = struct.unpack(">Q", self._read_exact(8))
            payload = self._read_exact(plen) if plen else b""
            header["_payload"] = payload
            (self.stored if header["type"] == "output_stored" else self.msgs).put(header)

    def _read_err(self):
        while True:
            chunk = self.proc.stderr.read1(65536) if hasattr(self.proc.stderr, "read1") else self.proc.stderr.read(1)
            if not chunk:
                return
            self.stderr_chunks.append(chunk)

    @property
    def stderr(self):
        return b"".join(self.stderr_chunks).decode("utf-8", "replace")

    def send_raw(self, data):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def send(self, header, payload=b""):
        h = json.dumps(header).encode("utf-8")
        self.send_raw(struct.pack(">I", len(h)) + h + struct.pack(">Q", len(payload)) + payload)

    def recv(self, timeout=30):
        msg = self.msgs.get(timeout=timeout)
        if msg is None:
            raise EOFError("worker closed its stdout")
        return msg

    def new_id(self):
        rid = self.next_id
        self.next_id += 1
        return rid

    def request(self, mtype, payload=b"", timeout=30, on_input=None, **fields):
        """Send a request; return (terminal message, all messages for it in order)."""
        rid = self.new_id()
        self.send(dict(type=mtype, id=rid, **fields), payload)
        return self.collect(rid, timeout=timeout, on_input=on_input)

    def collect(self, rid, timeout=30, on_input=None):
        got = []
        n_outputs = None
        while True:
            msg = self.recv(timeout)
            assert msg.get("id") == rid, (msg, rid)
            got.append(msg)
            t = msg["type"]
            if t == "stream":
                continue
            if t == "input_request":
                value = on_input(msg) if on_input else ""
                self.send({"type": "input_reply", "id": rid, "value": value})
                continue
            if t == "block_result":
                # Frames written to files (encoding "parquet") are not sent as `output` messages.
                inline = [o["index"] for o in msg["outputs"] if o["encoding"] != "parquet"]
                final = msg
                if not inline:
                    return final, got
                continue
            if t == "output":
                if msg["index"] == inline[-1]:
                    return final, got
                continue
            return msg, got

    def wait_stored(self, timeout=30):
        """The next `output_stored` message."""
        return self.stored.get(timeout=timeout)

    def run_block(self, **fields):
        fields.setdefault("block_type", "custom")
        fields.setdefault("upstream_keys", [])
        fields.setdefault("global_vars", {})
        fields.setdefault("pipeline_uuid", "p")
        return self.request("run_block", **fields)

    def close(self):
        if self.proc.poll() is None:
            try:
                self.send({"type": "shutdown", "id": self.new_id()})
                self.proc.wait(timeout=10)
            except Exception:
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except Exception:
                pass


@pytest.fixture
def codec():
    """The worker's value codec, imported into the test process."""
    if KERNEL_PY not in sys.path:
        sys.path.append(KERNEL_PY)
    from wand_worker import codec

    return codec


@pytest.fixture
def worker():
    w = Worker()
    yield w
    w.close()


@pytest.fixture(params=["fork", "thread"])
def file_worker(request):
    """A worker writing frames to files in one of its two ways (files.py): a forked child
    (Linux) or a thread writing a copy."""
    if request.param == "fork" and not sys.platform.startswith("linux"):
        pytest.skip("the forked writer is used on Linux")
    w = Worker(env={"WAND_WORKER_WRITER": request.param})
    yield w
    w.close()


@pytest.fixture
def project(tmp_path):
    """A Mage-like project `proj` inside tmp_path; returns a helper to write block files."""
    root = tmp_path / "proj"
    for d in ("", "data_loaders", "transformers", "data_exporters", "custom", "utils", "callbacks"):
        (root / d).mkdir(parents=True, exist_ok=True)
        (root / d / "__init__.py").write_text("")
    (root / "metadata.yaml").write_text("project_type: standalone\n")

    class P:
        path = str(root)

        @staticmethod
        def block(rel, text):
            p = root / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
            return str(p)

    return P
