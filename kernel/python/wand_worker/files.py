"""Frame outputs written to Parquet files on a background thread (PROTOCOL.md 6.6.6).

When a `run_block` names an `output_dir`, the block's frames are taken as Arrow tables when it
returns and queued here; one thread encodes and writes them (pyarrow releases the GIL while it
does) while the worker already runs the next request, and reports each file with an
`output_stored` message. The engine then never receives the frame itself."""

import queue
import threading


class OutputFiles:
    def __init__(self, worker):
        self.worker = worker
        self.jobs = queue.Queue()
        self.thread = None
        self.pending = 0
        self.settled = threading.Condition()

    def submit(self, rid, index, table, path):
        with self.settled:
            self.pending += 1
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, name="wand-output-files", daemon=True)
            self.thread.start()
        self.jobs.put((rid, index, table, path))

    def drain(self):
        """Waits until every queued file is written and reported (before the worker exits)."""
        with self.settled:
            while self.pending:
                self.settled.wait()

    def _run(self):
        from wand_worker import codec

        while True:
            rid, index, table, path = self.jobs.get()
            message = {"type": "output_stored", "id": rid, "index": index, "path": path}
            try:
                message["bytes"] = codec.write_parquet(table, path)
            except Exception as e:  # reported to the engine, which fails the block
                message["error"] = "cannot write %s: %s: %s" % (path, type(e).__name__, e)
            del table  # the snapshot is freed before the next one is taken from the queue
            self.worker.send(message)
            with self.settled:
                self.pending -= 1
                self.settled.notify_all()
