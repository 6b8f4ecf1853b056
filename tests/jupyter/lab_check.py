#!/usr/bin/env python3
"""JupyterLab in headless Chromium runs a notebook made by `wand notebook` on the `wand` kernel.

run.sh runs it with JupyterLab from .venv-lab; by hand:

    python tests/jupyter/lab_check.py --jupyter /path/to/venv-with-jupyterlab/bin/jupyter

It copies examples/nyc_taxi to a temp dir, writes taxi_embedded as an .ipynb, starts JupyterLab
(with the app exposed as `window.jupyterapp`) and Chromium with the DevTools protocol, opens the
notebook, runs "Run All Cells" and waits for the kernel to be idle with every code cell
executed. It checks the outputs JupyterLab's model holds (four block displays, no error, a
frame table) and that Chromium rendered the frame as an HTML table. Prints one line per check;
exit code 0 when all pass. Needs tornado (JupyterLab's environment has it) and pandas/pyarrow
in WAND_PYTHON (default: the repo's .venv).
"""
import argparse
import asyncio
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, timeout=60):
    deadline = time.time() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.read()
        except Exception:
            if time.time() > deadline:
                raise
            time.sleep(0.3)


class Page:
    """The smallest DevTools-protocol client: Runtime.evaluate over a websocket."""

    def __init__(self, ws):
        self.ws = ws
        self.next_id = 0

    async def eval(self, expression, timeout=60):
        self.next_id += 1
        await self.ws.write_message(json.dumps({"id": self.next_id, "method": "Runtime.evaluate", "params": {"expression": expression, "awaitPromise": True, "returnByValue": True}}))
        deadline = time.time() + timeout
        while time.time() < deadline:
            message = json.loads(await asyncio.wait_for(self.ws.read_message(), timeout))
            if message.get("id") == self.next_id:
                result = message["result"]
                if "exceptionDetails" in result:
                    raise RuntimeError(json.dumps(result["exceptionDetails"])[:2000])
                return result["result"].get("value")
        raise TimeoutError(expression[:80])


STATE = """(() => {
  const app = window.jupyterapp;
  if (!app) return {ready: false, why: 'no window.jupyterapp yet'};
  const panel = Array.from(app.shell.widgets('main')).find(w => w.sessionContext && w.content && w.content.widgets);
  if (!panel) return {ready: false, why: 'no notebook panel yet', main: Array.from(app.shell.widgets('main')).map(w => w.title.label),
                      dialogs: Array.from(document.querySelectorAll('.jp-Dialog')).map(d => d.innerText.slice(0, 300))};
  const ctx = panel.sessionContext;
  const cells = panel.content.widgets.map(cell => ({
    type: cell.model.type,
    first: cell.model.sharedModel.getSource().split('\\n')[0],
    count: cell.model.type === 'code' ? cell.model.executionCount : null,
    outputs: cell.model.type === 'code' ? cell.model.outputs.toJSON() : [],
  }));
  return {ready: true, kernel: ctx.kernelDisplayName, status: ctx.session && ctx.session.kernel ? ctx.session.kernel.status : 'none',
          cells, tables: document.querySelectorAll('.jp-OutputArea-output table').length};
})()"""


async def drive(cdp_port, lab_url, timeout):
    from tornado.websocket import websocket_connect

    targets = json.loads(wait_http(f"http://127.0.0.1:{cdp_port}/json"))
    page = [t for t in targets if t["type"] == "page"][0]
    ws = await websocket_connect(page["webSocketDebuggerUrl"], max_message_size=64 << 20)
    page = Page(ws)
    await page.eval(f"location.href = {json.dumps(lab_url)}; 1")
    deadline = time.time() + timeout
    state = {}
    while time.time() < deadline:
        await asyncio.sleep(1)
        try:
            state = await page.eval(STATE)
        except (RuntimeError, TimeoutError):
            continue
        if state.get("ready") and state["status"] == "idle":
            break
    else:
        raise TimeoutError(f"JupyterLab did not get an idle wand kernel: {json.dumps(state)[:1000]}")
    # Run All on the notebook panel (made current first: the command acts on the current one).
    await page.eval("""(async () => {
      const app = window.jupyterapp;
      const panel = Array.from(app.shell.widgets('main')).find(w => w.sessionContext && w.content && w.content.widgets);
      app.shell.activateById(panel.id);
      await app.commands.execute('notebook:run-all-cells');
      return 1;
    })()""")
    while time.time() < deadline:
        await asyncio.sleep(1)
        state = await page.eval(STATE)
        code = [c for c in state["cells"] if c["type"] == "code"]
        if state["status"] == "idle" and all(c["count"] is not None for c in code):
            return state
    raise TimeoutError(f"the cells did not all run: {json.dumps(state)[:2000]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jupyter", default=shutil.which("jupyter"), help="the `jupyter` of an environment with jupyterlab")
    parser.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome"))
    parser.add_argument("--wand", type=Path, default=REPO / "target" / "debug" / "wand")
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="wand-lab-"))
    project = tmp / "nyc_taxi"
    shutil.copytree(REPO / "examples" / "nyc_taxi", project)
    subprocess.run([str(args.wand), "notebook", "taxi_embedded", "--project", str(project), "-o", str(project / "taxi.ipynb")], check=True, capture_output=True)
    subprocess.run([str(args.wand), "kernel", "install", "--prefix", str(tmp / "prefix")], check=True, capture_output=True)
    env = dict(os.environ)
    env["JUPYTER_PATH"] = str(tmp / "prefix" / "share" / "jupyter")
    env.setdefault("WAND_PYTHON", str(REPO / ".venv" / "bin" / "python"))
    env["MAGE_DATA_DIR"] = str(tmp / "mage_data")
    env["JUPYTER_CONFIG_DIR"] = str(tmp / "config")
    env["JUPYTER_RUNTIME_DIR"] = str(tmp / "runtime")

    token = secrets.token_hex(16)
    lab_port, cdp_port = free_port(), free_port()
    lab = subprocess.Popen(
        [args.jupyter, "lab", "--no-browser", f"--port={lab_port}", "--ip=127.0.0.1", f"--IdentityProvider.token={token}",
         "--LabApp.expose_app_in_browser=True", f"--ServerApp.root_dir={project}", "--ServerApp.allow_root=True"],
        env=env, stdout=open(tmp / "lab.log", "w"), stderr=subprocess.STDOUT,
    )
    browser = None
    try:
        wait_http(f"http://127.0.0.1:{lab_port}/api/status?token={token}")
        browser = subprocess.Popen(
            [args.chromium, "--headless=new", "--no-sandbox", "--disable-gpu", f"--remote-debugging-port={cdp_port}",
             f"--user-data-dir={tmp / 'chromium'}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{lab_port}/lab/tree/taxi.ipynb?token={token}"
        state = asyncio.run(drive(cdp_port, url, args.timeout))
    finally:
        for process in (browser, lab):
            if process is not None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()

    outputs = [o for c in state["cells"] if c["type"] == "code" for o in c["outputs"]]
    shown = [o for o in outputs if o["output_type"] == "display_data"]
    checks = [
        ("the notebook runs on the wand kernel", state["kernel"] == "Wand (Mage pipelines)", state["kernel"]),
        ("every code cell ran", all(c["count"] is not None for c in state["cells"] if c["type"] == "code"), [c["count"] for c in state["cells"]]),
        ("no error output", not [o for o in outputs if o["output_type"] == "error"], [o.get("evalue") for o in outputs if o["output_type"] == "error"]),
        ("one display per block cell", len(shown) == 4, len(shown)),
        ("a frame in the model", any("rows ×" in o.get("data", {}).get("text/html", "") for o in shown), ""),
        ("Chromium rendered frame tables", state["tables"] >= 1, state["tables"]),
    ]
    failed = 0
    for name, ok, detail in checks:
        print(f"{'ok  ' if ok else 'FAIL'} {name}" + ("" if ok else f": {detail}"))
        failed += not ok
    print(f"JupyterLab log: {tmp / 'lab.log'}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
