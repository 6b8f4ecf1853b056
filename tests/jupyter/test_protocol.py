"""Protocol details jupyter_kernel_test leaves out: every message of a block-cell session checked
against the message spec, inspect, history, comm_info, comm_open, interrupt and shutdown on the
control channel."""
import time

from jupyter_kernel_test.msgspec_v5 import validate_message

from conftest import CLEAN, make_project, run_cell


def shell_reply(kc, msg_id, timeout=30):
    reply = kc.get_shell_msg(timeout=timeout)
    validate_message(reply, parent_id=msg_id)
    assert reply["parent_header"]["msg_id"] == msg_id
    return reply


def test_block_cell_messages_follow_the_spec(kernel, project):
    _, kc = kernel
    cells = [
        run_cell(kc, "%%block export"),
        run_cell(kc, "%%block clean\n" + CLEAN.replace("df.x > 1", "df.x > 2")),  # reactive update
        run_cell(kc, "%reactive off"),
        run_cell(kc, "%%block clean\n" + CLEAN),  # lazy: stale mark
        run_cell(kc, "%%block clean\n" + CLEAN.replace("df.x > 1", "df.x > 100")),  # failed test
        run_cell(kc, "%status\n%dag\n%vars"),
        run_cell(kc, "%%sql\nSELECT 1 AS one"),
        run_cell(kc, "%nope"),
    ]
    types = set()
    for cell in cells:
        validate_message(cell.reply, "execute_reply")
        assert cell.reply["content"]["user_expressions"] == {}
        for message in cell.messages:
            validate_message(message)
            types.add(message["msg_type"])
            if message["msg_type"] in ("display_data", "update_display_data"):
                assert message["content"].get("transient", {}) is not None
    assert {"execute_input", "stream", "display_data", "update_display_data", "error", "execute_result"} <= types, types


def test_inspect_history_and_comm_info(kernel):
    _, kc = kernel
    msg_id = kc.inspect("%%block clean", 10)
    reply = shell_reply(kc, msg_id)
    assert reply["content"]["found"] and "transformers/clean.py" in reply["content"]["data"]["text/plain"]
    msg_id = kc.inspect("not_a_block_name", 3)
    reply = shell_reply(kc, msg_id)
    assert reply["content"]["status"] == "ok" and not reply["content"]["found"]

    # Python names are inspected in the scratch namespace, without touching `_`.
    assert run_cell(kc, "def double(x):\n    '''Twice x.'''\n    return 2 * x\n\n41 + 1").ok
    msg_id = kc.inspect("double(", 7)
    text = shell_reply(kc, msg_id)["content"]["data"]["text/plain"]
    assert "Signature: double(x)" in text and "Twice x." in text, text
    assert run_cell(kc, "_").of("execute_result")[0]["content"]["data"]["text/plain"] == "42"
    assert run_cell(kc, "'__wand_inspect' in globals()").of("execute_result")[0]["content"]["data"]["text/plain"] == "False"

    msg_id = kc.history(hist_access_type="tail", n=2, output=True)
    history = shell_reply(kc, msg_id)["content"]["history"]
    assert [entry[2] for entry in history] == [["_", "42"], ["'__wand_inspect' in globals()", "False"]], history
    msg_id = kc.comm_info()
    assert shell_reply(kc, msg_id)["content"]["comms"] == {}

    # A comm nobody handles is closed; the kernel carries on.
    kc.shell_channel.send(kc.session.msg("comm_open", {"comm_id": "c1", "target_name": "jupyter.widget", "data": {}}))
    assert run_cell(kc, "1 + 2").of("execute_result")[0]["content"]["data"]["text/plain"] == "3"


def test_interrupt_while_idle_is_harmless(kernel):
    km, kc = kernel
    msg = kc.session.msg("interrupt_request", {})
    kc.control_channel.send(msg)
    reply = kc.control_channel.get_msg(timeout=10)
    validate_message(reply, "interrupt_reply", msg["header"]["msg_id"])
    # The next cell is not interrupted by the stale request.
    cell = run_cell(kc, "import time\ntime.sleep(0.5)\n'done'")
    assert cell.ok and cell.of("execute_result")[0]["content"]["data"]["text/plain"] == "'done'"
    assert km.is_alive()


def test_shutdown_request_ends_the_kernel(kernel):
    km, kc = kernel
    assert run_cell(kc, "x = 1").ok  # a scratch worker is running
    msg_id = kc.shutdown()
    reply = kc.control_channel.get_msg(timeout=10)
    validate_message(reply, "shutdown_reply", msg_id)
    assert reply["content"]["restart"] is False
    deadline = time.time() + 10
    while km.is_alive() and time.time() < deadline:
        time.sleep(0.1)
    assert not km.is_alive(), "the kernel process did not exit after shutdown_reply"


def test_requests_queued_behind_an_error_are_aborted(kernel):
    _, kc = kernel
    assert run_cell(kc, "x = 0").ok
    failing = kc.execute("import time\ntime.sleep(1)\nraise ValueError('stop')")
    queued = [kc.execute("x += 1"), kc.execute("x += 1")]
    assert shell_reply(kc, failing)["content"]["status"] == "error"
    for msg_id in queued:
        reply = kc.get_shell_msg(timeout=30)
        assert reply["parent_header"]["msg_id"] == msg_id
        # "aborted" as ipykernel sends it (jupyter_kernel_test's schema spells it "abort").
        assert reply["content"]["status"] == "aborted", reply["content"]
    # Later cells run again, and the aborted ones did not.
    assert run_cell(kc, "x").of("execute_result")[0]["content"]["data"]["text/plain"] == "0"
    # Without stop_on_error the next request runs.
    failing = kc.execute("raise ValueError('go on')", stop_on_error=False)
    after = kc.execute("x + 5")
    assert shell_reply(kc, failing)["content"]["status"] == "error"
    assert shell_reply(kc, after)["content"]["status"] == "ok"


ORPHAN = """
import subprocess, sys, time
from jupyter_client.manager import KernelManager
km = KernelManager(kernel_name="wand")
km.start_kernel(stderr=subprocess.DEVNULL)
kc = km.client(); kc.start_channels(); kc.wait_for_ready(timeout=60)
kc.execute("x = 1")  # a scratch worker too
time.sleep(3)
print(km.provisioner.process.pid, flush=True)
time.sleep(600)
"""


def test_kernel_exits_when_its_parent_is_killed(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    parent = subprocess.Popen([sys.executable, "-c", ORPHAN], stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        pid = int(parent.stdout.readline())
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        # A zombie counts as gone (its parent is dead; init reaps it).
        if open(f"/proc/{pid}/stat").read().split(")")[-1].split()[0] == "Z":
            break
        time.sleep(0.2)
    else:
        os.kill(pid, signal.SIGKILL)
        raise AssertionError("the kernel outlived its parent by 10 s")


def test_user_expressions(kernel):
    _, kc = kernel
    assert run_cell(kc, "x = 20").ok
    msg_id = kc.execute("y = x + 1\ny * 2", user_expressions={"sum": "x + y", "text": "'a\\nb'", "bad": "1 / 0"})
    reply = shell_reply(kc, msg_id)
    expressions = reply["content"]["user_expressions"]
    assert expressions["sum"] == {"status": "ok", "data": {"text/plain": "41"}, "metadata": {}}, expressions
    assert expressions["text"]["data"]["text/plain"] == "'a\\nb'", expressions
    assert expressions["bad"]["status"] == "error" and expressions["bad"]["ename"] == "ZeroDivisionError", expressions
    assert run_cell(kc, "_").of("execute_result")[0]["content"]["data"]["text/plain"] == "42"


def test_display_and_clear_output_in_scratch_cells(kernel):
    _, kc = kernel
    cell = run_cell(kc, "print('before')\nh = display('first', display_id=True)\nprint('after')\ndisplay('second', display_id=h, update=True)\nclear_output(wait=True)")
    assert cell.ok, cell.messages
    kinds = [m["msg_type"] for m in cell.messages]
    assert kinds == ["execute_input", "stream", "display_data", "stream", "update_display_data", "clear_output"], kinds
    first, second = cell.messages[2]["content"], cell.messages[4]["content"]
    assert first["data"]["text/plain"] == "'first'" and second["data"]["text/plain"] == "'second'"
    assert first["transient"]["display_id"] == second["transient"]["display_id"]
    assert cell.messages[5]["content"] == {"wait": True}


def test_help_syntax_pages_objects_and_blocks(kernel):
    _, kc = kernel
    cell = run_cell(kc, "load?")
    assert cell.ok
    pages = cell.reply["content"]["payload"]
    assert len(pages) == 1 and pages[0]["source"] == "page", pages
    assert "load" in pages[0]["data"]["text/plain"], pages
    missing = run_cell(kc, "surely_not_defined?")
    assert missing.ok and missing.reply["content"]["payload"] == []
    assert "Object `surely_not_defined` not found." in missing.text


def test_kernel_info_is_answered_while_the_project_loads(tmp_path):
    """The kernel answers before it has read its project, and a cell sent meanwhile waits for
    the project and sees it. The project's metadata.yaml is a FIFO here, so the load stays
    blocked until the test writes it: no timing involved."""
    import errno
    import os

    from jupyter_client.manager import KernelManager

    project = make_project(tmp_path)
    metadata = project / "metadata.yaml"
    text = metadata.read_text()
    metadata.unlink()
    os.mkfifo(metadata)
    km = KernelManager(kernel_name="wand")
    km.start_kernel(cwd=str(project / "pipelines" / "p"))
    kc = km.client()
    kc.start_channels()
    try:
        msg_id = kc.kernel_info()
        validate_message(shell_reply(kc, msg_id), "kernel_info_reply")
        request = kc.session.msg("kernel_info_request", {})
        kc.control_channel.send(request)
        validate_message(kc.control_channel.get_msg(timeout=30), "kernel_info_reply", request["header"]["msg_id"])

        cell_id = kc.execute("%status")
        # Open the FIFO once the kernel reads it, put the real file in its place for later
        # reads, then let the first read through.
        deadline = time.time() + 30
        while True:
            try:
                fifo = os.open(metadata, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError as err:
                assert err.errno == errno.ENXIO and time.time() < deadline, "the kernel never read metadata.yaml"
                time.sleep(0.05)
        (metadata.parent / "metadata.tmp").write_text(text)
        os.replace(metadata.parent / "metadata.tmp", metadata)
        os.set_blocking(fifo, True)
        os.write(fifo, text.encode())
        os.close(fifo)

        reply = shell_reply(kc, cell_id)
        assert reply["content"]["status"] == "ok", reply["content"]
        streams = []
        while not streams:
            msg = kc.get_iopub_msg(timeout=30)
            if msg["parent_header"].get("msg_id") == cell_id and msg["msg_type"] == "stream":
                streams.append(msg["content"]["text"])
        assert streams[0].startswith("pipeline p (3 blocks"), streams
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
