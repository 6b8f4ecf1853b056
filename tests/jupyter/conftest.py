"""Real-client tests of the `wand` Jupyter kernel.

The kernelspec is installed with `wand kernel install --prefix` into a temporary folder put on
JUPYTER_PATH before any client looks for kernels. Kernels run Python through WAND_PYTHON.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WAND = Path(os.environ.get("WAND_BIN", REPO / "target" / "debug" / "wand"))

_prefix = Path(tempfile.mkdtemp(prefix="wand-kernelspec-"))
subprocess.run([str(WAND), "kernel", "install", "--prefix", str(_prefix)], check=True, capture_output=True)
os.environ["JUPYTER_PATH"] = str(_prefix / "share" / "jupyter")
os.environ.setdefault("WAND_PYTHON", sys.executable)
# Outputs go to a temporary variables dir, never to ~/.mage_data.
os.environ["MAGE_DATA_DIR"] = tempfile.mkdtemp(prefix="wand-mage-data-")

LOAD = '''\
if 'data_loader' not in globals():
    from mage_ai.data_preparation.decorators import data_loader
import pandas as pd


@data_loader
def load(*args, **kwargs):
    print('loading')
    return pd.DataFrame({'x': [1, 2, 3, 4], 'y': ['a', 'b', 'c', 'd']})
'''

CLEAN = '''\
if 'transformer' not in globals():
    from mage_ai.data_preparation.decorators import transformer
if 'test' not in globals():
    from mage_ai.data_preparation.decorators import test


@transformer
def clean(df, *args, **kwargs):
    return df[df.x > 1].reset_index(drop=True)


@test
def test_rows(output, *args):
    assert len(output) > 0, 'no rows'
'''

EXPORT = '''\
if 'data_exporter' not in globals():
    from mage_ai.data_preparation.decorators import data_exporter


@data_exporter
def export(df, *args, **kwargs):
    return {'rows': len(df)}
'''


def block_entry(uuid, kind, upstream, downstream):
    ups = "".join(f"\n  - {u}" for u in upstream) or " []"
    downs = "".join(f"\n  - {d}" for d in downstream) or " []"
    # Dedent the template before putting the lists in: their lines are less indented and
    # would otherwise change what dedent removes.
    return textwrap.dedent("""\
    - all_upstream_blocks_executed: true
      color: null
      configuration: {}
      downstream_blocks:DOWNS
      executor_config: null
      executor_type: local_python
      has_callback: false
      language: python
      name: UUID
      retry_config: null
      status: not_executed
      timeout: null
      type: KIND
      upstream_blocks:UPS
      uuid: UUID
    """).replace("DOWNS", downs).replace("UPS", ups).replace("KIND", kind).replace("UUID", uuid)


def make_project(root: Path) -> Path:
    """A project `proj` with pipeline `p`: load -> clean -> export."""
    project = root / "proj"
    (project / "pipelines" / "p").mkdir(parents=True)
    (project / "metadata.yaml").write_text("project_uuid: proj\nvariables_dir: .mage_data\n")
    (project / "__init__.py").write_text("")
    for folder, name, text in [("data_loaders", "load", LOAD), ("transformers", "clean", CLEAN), ("data_exporters", "export", EXPORT)]:
        (project / folder).mkdir()
        (project / folder / f"{name}.py").write_text(text)
    blocks = (
        block_entry("load", "data_loader", [], ["clean"])
        + block_entry("clean", "transformer", ["load"], ["export"])
        + block_entry("export", "data_exporter", ["clean"], [])
    )
    (project / "pipelines" / "p" / "metadata.yaml").write_text("blocks:\n" + blocks + "name: p\ntype: python\nuuid: p\n")
    (project / "pipelines" / "p" / "__init__.py").write_text("")
    return project


@pytest.fixture
def project(tmp_path):
    return make_project(tmp_path)


class Cell:
    def __init__(self, reply, messages):
        self.reply = reply
        self.messages = messages

    def of(self, *types):
        return [m for m in self.messages if m["msg_type"] in types]

    @property
    def text(self):
        return "".join(m["content"]["text"] for m in self.of("stream"))

    def display_ids(self, msg_type):
        return [m["content"].get("transient", {}).get("display_id") for m in self.of(msg_type)]

    @property
    def ok(self):
        return self.reply["content"]["status"] == "ok"


def run_cell(kc, code, timeout=120, stdin_answers=None):
    """Executes `code`; returns the reply and the cell's iopub messages up to `idle`."""
    msg_id = kc.execute(code, allow_stdin=stdin_answers is not None)
    messages = []
    deadline = time.time() + timeout
    answers = list(stdin_answers or [])
    while True:
        if answers:
            try:
                kc.get_stdin_msg(timeout=0.05)
                kc.input(answers.pop(0))
            except Exception:
                pass
        try:
            msg = kc.get_iopub_msg(timeout=0.2)
        except Exception:
            if time.time() > deadline:
                raise TimeoutError(f"no idle for {code!r}; got {[m['msg_type'] for m in messages]}")
            continue
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
        if msg["msg_type"] != "status":
            messages.append(msg)
    reply = kc.get_shell_msg(timeout=timeout)
    assert reply["parent_header"]["msg_id"] == msg_id
    return Cell(reply, messages)


@pytest.fixture
def kernel(project):
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="wand", cwd=str(project / "pipelines" / "p"))
    yield km, kc
    kc.stop_channels()
    km.shutdown_kernel(now=True)
