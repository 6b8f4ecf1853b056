"""`wand notebook` for examples/nyc_taxi's taxi_embedded, executed by nbclient."""
import json
import shutil
import subprocess

import nbformat
from nbclient import NotebookClient

from conftest import REPO, WAND


def test_notebook_of_taxi_embedded_executes(tmp_path):
    project = tmp_path / "nyc_taxi"
    shutil.copytree(REPO / "examples" / "nyc_taxi", project)
    out = project / "taxi.ipynb"
    subprocess.run([str(WAND), "notebook", "taxi_embedded", "--project", str(project), "-o", str(out)], check=True)
    nb = nbformat.read(str(out), as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "wand"
    sources = [cell.source.splitlines()[0] for cell in nb.cells if cell.cell_type == "code"]
    assert sources == ["%pipeline taxi_embedded", "%%block load_taxi_data", "%%block transform_taxi_data", "%%block trips_per_day", "%%block export_daily_to_parquet"]
    assert any(cell.cell_type == "markdown" for cell in nb.cells)
    NotebookClient(nb, timeout=300, kernel_name="wand", resources={"metadata": {"path": str(project)}}).execute()
    shown = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs if o.output_type == "display_data"]
    assert len(shown) == 4, json.dumps([cell.outputs for cell in nb.cells], default=str)[:2000]
    assert "rows ×" in shown[2].data["text/html"]
