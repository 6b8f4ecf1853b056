"""Block cells, dependency-aware re-execution, interrupts and crashes, through jupyter_client."""
import json
import time

from conftest import CLEAN, run_cell


def test_block_cell_runs_stale_ancestors_first(kernel, project):
    _, kc = kernel
    cell = run_cell(kc, "%%block clean\n" + CLEAN)
    assert cell.ok, cell.reply["content"]
    # `load` had no stored output: it ran first, with a progress line in this cell.
    assert "load" in cell.text and "no stored output" in cell.text, cell.text
    assert cell.display_ids("display_data") == ["wand-block-p-clean"]
    shown = cell.of("display_data")[0]["content"]["data"]
    assert "3 rows × 2 columns" in shown["text/html"]
    assert "✓ test_rows" in shown["text/plain"]
    # Again: everything is fresh, only `clean` runs.
    again = run_cell(kc, "%%block clean")
    assert again.ok and "load" not in again.text, again.text


def test_reactive_rerun_updates_descendant_displays(kernel, project):
    _, kc = kernel
    assert run_cell(kc, "%%block export").ok
    changed = CLEAN.replace("df.x > 1", "df.x > 2")
    cell = run_cell(kc, "%%block clean\n" + changed)
    assert cell.ok, cell.reply["content"]
    assert "wand-block-p-export" in cell.display_ids("update_display_data"), [m["msg_type"] for m in cell.messages]
    update = [m for m in cell.of("update_display_data") if m["content"]["transient"]["display_id"] == "wand-block-p-export"][0]
    assert '"rows": 2' in update["content"]["data"]["text/plain"]
    assert (project / "transformers" / "clean.py").read_text() == changed


def test_early_cutoff_stops_the_wave(kernel, project):
    _, kc = kernel
    assert run_cell(kc, "%%block export").ok
    same_output = CLEAN.replace("    return df[df.x > 1]", "    # a comment only\n    return df[df.x > 1]")
    cell = run_cell(kc, "%%block clean\n" + same_output)
    assert cell.ok
    assert cell.display_ids("update_display_data") == [], cell.text


def test_lazy_mode_marks_descendants_stale(kernel, project):
    _, kc = kernel
    assert run_cell(kc, "%%block export").ok
    assert "reactive: off" in run_cell(kc, "%reactive off").text
    cell = run_cell(kc, "%%block clean\n" + CLEAN.replace("df.x > 1", "df.x > 3"))
    assert cell.ok
    updates = [m for m in cell.of("update_display_data") if m["content"]["transient"]["display_id"] == "wand-block-p-export"]
    assert updates and "stale" in updates[0]["content"]["data"]["text/plain"]
    status = run_cell(kc, "%status").text
    assert "export" in status and "stale" in status, status


def test_new_block_cell_edits_metadata(kernel, project):
    _, kc = kernel
    body = (
        "if 'transformer' not in globals():\n    from mage_ai.data_preparation.decorators import transformer\n\n\n"
        "@transformer\ndef count(df, *args, **kwargs):\n    return {'n': len(df)}\n"
    )
    cell = run_cell(kc, "%%transformer count --upstream clean\n" + body)
    assert cell.ok, cell.reply["content"]
    assert (project / "transformers" / "count.py").read_text() == body
    metadata = (project / "pipelines" / "p" / "metadata.yaml").read_text()
    assert "uuid: count" in metadata
    assert "  downstream_blocks:\n  - export\n  - count\n" in metadata, metadata
    assert '"n": 3' in cell.of("display_data")[0]["content"]["data"]["text/plain"]


def test_block_cells_run_in_one_worker_kept_between_cells(kernel, project):
    """The worker (and its pandas import) outlives a cell; its values do not: the next cell's
    inputs come from the stored outputs, so a block edited outside the notebook is seen."""
    _, kc = kernel
    body = (
        "if 'transformer' not in globals():\n    from mage_ai.data_preparation.decorators import transformer\n"
        "import os\n\n\n@transformer\ndef who(df, *args, **kwargs):\n    return {'pid': os.getpid(), 'rows': len(df)}\n"
    )
    first = run_cell(kc, "%%transformer who --upstream load\n" + body)
    assert first.ok, first.reply["content"]
    shown = first.of("display_data")[0]["content"]["data"]["text/plain"]
    pid = json.loads(shown[shown.index("{") :])["pid"]
    assert '"rows": 4' in shown, shown
    # The loader changes on disk; the next cell re-runs it and `who` sees its new output.
    loader = project / "data_loaders" / "load.py"
    loader.write_text(loader.read_text().replace("'x': [1, 2, 3, 4], 'y': ['a', 'b', 'c', 'd']", "'x': [1, 2], 'y': ['a', 'b']"))
    second = run_cell(kc, "%%block who")
    assert second.ok, second.reply["content"]
    shown = second.of("display_data")[0]["content"]["data"]["text/plain"]
    assert json.loads(shown[shown.index("{") :]) == {"pid": pid, "rows": 2}, shown


def test_failing_test_fails_the_cell(kernel, project):
    _, kc = kernel
    cell = run_cell(kc, "%%block clean\n" + CLEAN.replace("df.x > 1", "df.x > 100"))
    assert not cell.ok
    error = cell.of("error")[0]["content"]
    assert error["ename"] == "TestFailed" and "test_rows" in error["evalue"], error
    assert any("no rows" in line for line in error["traceback"])


def test_block_error_points_at_the_file(kernel, project):
    _, kc = kernel
    cell = run_cell(kc, "%%block clean\n" + CLEAN.replace("return df[df.x > 1].reset_index(drop=True)", "return df['nope']"))
    assert not cell.ok
    error = cell.of("error")[0]["content"]
    assert error["ename"] == "KeyError", error
    assert any("transformers/clean.py" in line for line in error["traceback"]), error["traceback"]


def free_port():
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_scratch_cells_see_block_outputs_and_sql(kernel, project):
    _, kc = kernel
    assert run_cell(kc, "%%block clean").ok
    cell = run_cell(kc, "len(clean)")
    assert cell.of("execute_result")[0]["content"]["data"]["text/plain"] == "3"
    sql = run_cell(kc, "%%sql\nSELECT COUNT(*) AS n FROM clean")
    assert sql.ok, sql.reply["content"]
    assert "1 rows × 1 columns" in sql.of("execute_result")[0]["content"]["data"]["text/html"]


def test_mage_io_requests_from_scratch_code_are_answered(kernel, project):
    """mage_ai.io.postgres in a scratch cell goes through the engine; a dead server gives a clear
    error naming the profile, and the kernel stays in step for the next cell."""
    _, kc = kernel
    port = free_port()
    (project / "io_config.yaml").write_text(f"dead:\n  POSTGRES_HOST: 127.0.0.1\n  POSTGRES_PORT: {port}\n"
                                            "  POSTGRES_DBNAME: x\n  POSTGRES_USER: x\n  POSTGRES_CONNECT_TIMEOUT: 2\n")
    code = ("from mage_ai.io.config import ConfigFileLoader\n"
            "from mage_ai.io.postgres import Postgres\n"
            f"Postgres.with_config(ConfigFileLoader({str(project / 'io_config.yaml')!r}, 'dead')).load('SELECT 1')")
    cell = run_cell(kc, code)
    assert not cell.ok
    error = cell.of("error")[0]["content"]
    assert "dead" in error["evalue"], error
    after = run_cell(kc, "1 + 1")
    assert after.ok and after.of("execute_result")[0]["content"]["data"]["text/plain"] == "2"


def test_input_is_forwarded(kernel):
    _, kc = kernel
    cell = run_cell(kc, "name = input('who? ')\nprint('hi', name)", stdin_answers=["wand"])
    assert cell.ok and "hi wand" in cell.text, cell.text


def test_interrupt_stops_scratch_code(kernel):
    km, kc = kernel
    msg_id = kc.execute("import time\ntime.sleep(60)")
    time.sleep(2)
    start = time.time()
    km.interrupt_kernel()
    reply = kc.get_shell_msg(timeout=20)
    assert reply["parent_header"]["msg_id"] == msg_id
    assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "KeyboardInterrupt"
    assert time.time() - start < 3
    assert run_cell(kc, "1 + 1").of("execute_result")[0]["content"]["data"]["text/plain"] == "2"


def test_interrupt_stops_a_looping_block(kernel, project):
    km, kc = kernel
    loop = CLEAN.replace("return df[df.x > 1].reset_index(drop=True)", "while True:\n        pass")
    msg_id = kc.execute("%%block clean\n" + loop)
    time.sleep(4)
    start = time.time()
    km.interrupt_kernel()
    reply = kc.get_shell_msg(timeout=30)
    assert reply["parent_header"]["msg_id"] == msg_id
    assert reply["content"]["status"] == "error"
    assert time.time() - start < 8
    assert run_cell(kc, "%%block clean\n" + CLEAN).ok


def test_worker_crash_does_not_kill_the_kernel(kernel):
    _, kc = kernel
    cell = run_cell(kc, "import os\nos._exit(3)")
    assert not cell.ok and cell.reply["content"]["ename"] == "WorkerLost"
    assert run_cell(kc, "2 + 2").of("execute_result")[0]["content"]["data"]["text/plain"] == "4"


def test_restarted_kernel_reuses_fresh_outputs(kernel, project):
    km, kc = kernel
    assert run_cell(kc, "%%block export").ok
    km.restart_kernel(now=True)
    kc.wait_for_ready(timeout=60)
    status = run_cell(kc, "%status").text
    assert "export" in status and "stale" not in status and "no stored output" not in status, status
    cell = run_cell(kc, "%%block export")
    assert cell.ok and "load" not in cell.text, cell.text


def test_dag_and_inspect(kernel):
    _, kc = kernel
    dag = run_cell(kc, "%dag")
    assert "image/svg+xml" in dag.of("display_data")[0]["content"]["data"]
    kc.inspect("clean", 2)
    reply = kc.get_shell_msg(timeout=30)
    assert reply["content"]["found"] and "transformers/clean.py" in reply["content"]["data"]["text/plain"]


def test_run_magic_runs_the_pipeline_then_only_what_changed(kernel, project):
    _, kc = kernel
    cell = run_cell(kc, "%run")
    assert cell.ok, cell.reply["content"]
    assert all(f"✓ {uuid} ran" in cell.text for uuid in ("load", "clean", "export")), cell.text
    again = run_cell(kc, "%run --changed")
    assert again.ok and "nothing ran" in again.text, again.text


def test_files_edited_outside_the_notebook_are_seen_by_the_next_cell(kernel, project):
    """The kernel re-reads the project only when a file it read has changed (a stat per file);
    an edit made in another editor after that must still reach the next cell."""
    _, kc = kernel
    assert run_cell(kc, "%run").ok
    time.sleep(0.2)  # older than the window in which a just-written file is never trusted
    assert "stale" not in run_cell(kc, "%status").text  # the kernel now holds a trusted stamp
    clean = project / "transformers" / "clean.py"
    clean.write_text(clean.read_text().replace("df.x > 1", "df.x > 0"))
    time.sleep(0.2)
    status = run_cell(kc, "%status").text
    assert "clean" in status and "stale" in status, status
    cell = run_cell(kc, "%run --changed")
    assert cell.ok and "✓ clean ran" in cell.text and "✓ load ran" not in cell.text, cell.text
    # A block added to metadata.yaml by hand is listed by the next cell too.
    (project / "custom").mkdir(exist_ok=True)
    (project / "custom" / "extra.py").write_text("@custom\ndef extra(*args, **kwargs):\n    return 1\n")
    metadata = project / "pipelines" / "p" / "metadata.yaml"
    metadata.write_text(metadata.read_text().replace("blocks:\n", "blocks:\n- uuid: extra\n  type: custom\n  upstream_blocks: []\n", 1))
    time.sleep(0.2)
    assert "extra" in run_cell(kc, "%status").text
