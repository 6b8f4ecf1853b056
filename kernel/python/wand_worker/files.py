"""Frame outputs written to Parquet files in the background (PROTOCOL.md 6.6.6).

When a `run_block` names an `output_dir`, the block's frames are handed to `OutputFiles.submit`
when it returns; the worker already runs its next request while the files are written, and
reports each with an `output_stored` message telling what the file holds. The engine never
receives the frame itself.

The next block may change a pandas frame in place while its file is being written. Two ways
keep the file as the block returned it:

* "fork" (Linux, the default there): a child process converts the frame to Arrow and writes
  it. It sees the worker's memory as it was at the fork (copy-on-write), so nothing is copied
  or converted while the next block waits: forking a worker that holds a 1.4M-row frame takes
  about 10 ms, where converting and copying that frame took 0.12-0.15 s.
* "thread" (elsewhere, when a fork fails, or with `WAND_WORKER_WRITER=thread`): the frame was
  converted when the block returned (`codec.encode_for_file`); a table that shares memory with
  a pandas frame is copied, and one thread writes the tables in turn (pyarrow releases the GIL
  while it encodes).

Either way one file is written at a time, so the writes take one core beside the user's code.
"""

import json
import os
import queue
import sys
import threading
import warnings

# Children alive at once; a further `submit` waits for one to finish (each holds a
# copy-on-write view of frames the worker may have changed or freed since).
MAX_CHILDREN = 4


def default_mode():
    mode = os.environ.get("WAND_WORKER_WRITER", "")
    if mode in ("fork", "thread"):
        return mode
    return "fork" if sys.platform.startswith("linux") and hasattr(os, "fork") else "thread"


class OutputFiles:
    def __init__(self, worker, mode=None):
        self.worker = worker
        self.mode = mode or default_mode()
        self.pending = 0
        self.children = 0
        self.settled = threading.Condition()
        self.jobs = queue.Queue()
        self.thread = None
        self.turns = None  # fork mode: children take turns on a POSIX lock on this file

    @property
    def converts_later(self):
        """Whether `submit` takes pandas values unconverted (`codec.encode_for_file`)."""
        return self.mode == "fork"

    def submit(self, rid, index, frame, path):
        """Writes `frame` (an Arrow table, or in fork mode a pandas value) to `path` in the
        background and reports it."""
        from wand_worker import codec

        with self.settled:
            self.pending += 1
        if self.mode == "fork":
            try:
                self._fork(rid, index, frame, path)
                return
            except OSError as e:  # e.g. no memory for the child's page tables
                _diag("cannot fork a writer for %s (%s); writing it on a thread" % (path, e))
        if codec.borrows_memory(frame):  # fork mode gave a pandas value: converted now
            try:
                frame = codec.table_for_file(frame)[0]
            except Exception as e:
                self._report(rid, index, path, codec.not_convertible(frame, e))
                return
        if frame.schema.pandas_metadata is not None:  # converted from pandas: may share its columns
            frame = codec.detach(frame)
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, name="wand-output-files", daemon=True)
            self.thread.start()
        self.jobs.put((rid, index, frame, path))

    def drain(self):
        """Waits until every file is written and reported (before the worker exits)."""
        with self.settled:
            while self.pending:
                self.settled.wait()

    def _report(self, rid, index, path, outcome):
        message = {"type": "output_stored", "id": rid, "index": index, "path": path}
        message.update(outcome)
        self.worker.send(message)
        with self.settled:
            self.pending -= 1
            self.settled.notify_all()

    # ------------------------------------------------------------- thread mode
    def _run(self):
        while True:
            rid, index, table, path = self.jobs.get()
            outcome = write(table, path)
            del table  # the copy is freed before the next one is taken from the queue
            self._report(rid, index, path, outcome)

    # ------------------------------------------------------------- fork mode
    def _fork(self, rid, index, frame, path):
        with self.settled:
            while self.children >= MAX_CHILDREN:
                self.settled.wait()
        if self.turns is None:
            import tempfile

            self.turns = tempfile.TemporaryFile(prefix="wand-writes-")
        outcome_r, outcome_w = os.pipe()
        close = [fd for fd in (self.worker.proto_in, self.worker.proto_out) if fd is not None]
        parent = os.getpid()
        try:
            with warnings.catch_warnings():
                # Python 3.12+ warns about forking a process with threads: the child only runs
                # pyarrow's converter and writer, whose thread pools are re-created after a fork.
                warnings.simplefilter("ignore")
                pid = os.fork()
        except OSError:
            os.close(outcome_r)
            os.close(outcome_w)
            raise
        if pid == 0:  # the child: never returns
            _write_in_child(frame, path, outcome_w, self.turns.fileno(), close + [outcome_r], parent)
        os.close(outcome_w)
        with self.settled:
            self.children += 1
        threading.Thread(
            target=self._reap, args=(pid, outcome_r, rid, index, path), name="wand-output-file", daemon=True
        ).start()

    def _reap(self, pid, outcome_r, rid, index, path):
        with os.fdopen(outcome_r, "rb") as f:
            said = f.read()  # ends when the child closes its end, just before it exits
        try:
            outcome = json.loads(said)
        except ValueError:
            outcome = None
        if outcome is not None:
            # Told before the child is reaped: tearing down its copy of the worker's memory
            # took 10-13 ms after a 1.4M-row frame.
            self._report(rid, index, path, outcome)
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            status = 0  # reaped by user code (os.wait): what it said tells how it went
        with self.settled:
            self.children -= 1
            self.settled.notify_all()
        if outcome is None:
            if os.WIFSIGNALED(status):
                why = "the process writing it was killed by signal %d" % os.WTERMSIG(status)
            else:
                why = "the process writing it exited with status %d and said nothing" % os.WEXITSTATUS(status)
            self._report(rid, index, path, {"error": "cannot write %s: %s" % (path, why)})


def write(frame, path):
    """Converts and writes `frame`; returns what `output_stored` tells about it (PROTOCOL.md
    6.6.6): the file's `bytes` and shape, a `conversion_error`, or an `error`."""
    from wand_worker import codec

    try:
        table, shape = codec.table_for_file(frame)
    except Exception as e:
        return codec.not_convertible(frame, e)
    try:
        shape["bytes"] = codec.write_parquet(table, path)
    except Exception as e:  # reported to the engine, which fails the block
        return _cannot_write(path, e)
    return shape


def _cannot_write(path, error):
    return {"error": "cannot write %s: %s: %s" % (path, type(error).__name__, error)}


def _write_in_child(frame, path, outcome_w, turns, close, parent):
    """The forked writer: waits its turn, writes the file, tells the outcome as JSON on
    `outcome_w` and exits without running any of the worker's cleanup (it shares the worker's
    open files and must never touch the protocol)."""
    try:
        for fd in close:
            os.close(fd)
        _die_with(parent)
        import signal

        signal.signal(signal.SIGINT, signal.SIG_DFL)
        sys.stdout = sys.stderr = open(2, "w", closefd=False)  # never the protocol
        import fcntl

        fcntl.lockf(turns, fcntl.LOCK_EX)
        outcome = write(frame, path)
    except BaseException as e:
        outcome = _cannot_write(path, e)
    try:
        with os.fdopen(outcome_w, "wb") as f:
            f.write(json.dumps(outcome).encode("utf-8"))
    finally:
        os._exit(0)


def _die_with(parent):
    """Linux: the child is killed when the worker dies (a killed or crashed worker leaves no
    writer behind); it exits at once if the worker is already gone."""
    try:
        import ctypes

        PR_SET_PDEATHSIG, SIGKILL = 1, 9
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, SIGKILL)
    except Exception:
        pass
    if os.getppid() != parent:
        os._exit(1)


def _diag(msg):
    try:
        os.write(2, ("wand_worker: %s\n" % msg).encode("utf-8", "replace"))
    except OSError:
        pass
