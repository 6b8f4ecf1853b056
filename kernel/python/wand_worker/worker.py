"""Worker main loop: process setup, message dispatch, streams, input(), SIGINT."""

import builtins
import collections
import os
import queue
import signal
import sys
import threading
import traceback

from wand_worker import PROTOCOL_VERSION, protocol
from wand_worker.files import OutputFiles
from wand_worker.store import Store

# The running worker, for the mage_ai.io shim (io_request, PROTOCOL.md 6.14).
CURRENT = None

SHIM_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _installed_version(name):
    """The installed version of a distribution whose top-level module is `name` ("unknown" when
    its metadata is not beside it), or None when it cannot be imported.

    Read from the name of the `.dist-info` folder next to the package: `importlib.metadata`
    scans every distribution on `sys.path` and took 107 ms in a venv holding mage-ai, while the
    warm-up import waited for the GIL."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    try:
        if spec.submodule_search_locations:
            site = os.path.dirname(list(spec.submodule_search_locations)[0])
        else:
            site = os.path.dirname(spec.origin)
        prefix = name + "-"
        for entry in os.listdir(site):
            if entry.startswith(prefix) and entry.endswith(".dist-info"):
                return entry[len(prefix) : -len(".dist-info")]
    except (OSError, TypeError):
        pass
    return "unknown"


def _cache_bytecode():
    """Compiles the worker's own modules into `__pycache__` once per Python version, so that
    later workers do not compile them at start (28 ms of compiling, 5-10 ms of the start
    measured: the rest overlaps the pandas import), also where PYTHONDONTWRITEBYTECODE is
    set: the folder is Wand's (its cache, or the source tree), not the user's. Run when the
    worker exits, when nobody waits for it."""
    import importlib.util

    if os.path.exists(importlib.util.cache_from_source(os.path.join(PACKAGE_DIR, "worker.py"))):
        return
    try:
        import compileall

        for package in ("wand_worker", "mage_ai"):
            compileall.compile_dir(os.path.join(SHIM_DIR, package), quiet=2)
    except Exception:  # e.g. a read-only folder: the next worker compiles in memory as before
        pass


def _diag(msg):
    """Diagnostics for humans: the worker's stderr (fd 2), never the protocol."""
    try:
        os.write(2, ("wand_worker: %s\n" % msg).encode("utf-8", "replace"))
    except OSError:
        pass


class StreamWriter:
    """Replacement for sys.stdout/sys.stderr: sends `stream` events for the current request."""

    encoding = "utf-8"
    errors = "replace"
    FLUSH_AT = 8192

    def __init__(self, worker, name):
        self.worker = worker
        self.name = name
        self.buf = []
        self.size = 0
        self.lock = threading.RLock()

    def writable(self):
        return True

    def readable(self):
        return False

    def seekable(self):
        return False

    def isatty(self):
        return False

    def fileno(self):
        return 2  # C-level writers end on the worker's stderr

    @property
    def closed(self):
        return False

    def write(self, s):
        if not isinstance(s, str):
            if isinstance(s, (bytes, bytearray)):
                s = bytes(s).decode("utf-8", "replace")
            else:
                raise TypeError("write() argument must be str, not %s" % type(s).__name__)
        if not s:
            return 0
        with self.lock:
            self.buf.append(s)
            self.size += len(s)
            if self.size >= self.FLUSH_AT:
                self._emit(self._take_all())
            elif "\n" in s:
                text = "".join(self.buf)
                cut = text.rfind("\n") + 1
                self.buf = [text[cut:]] if cut < len(text) else []
                self.size = len(text) - cut
                self._emit(text[:cut])
        return len(s)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def _take_all(self):
        text = "".join(self.buf)
        self.buf = []
        self.size = 0
        return text

    def flush(self):
        with self.lock:
            if self.buf:
                self._emit(self._take_all())

    def _emit(self, text):
        if not text:
            return
        rid = self.worker.current_id
        if rid is None:
            _diag_raw(text)
            return
        self.worker.send({"type": "stream", "id": rid, "name": self.name, "text": text})


def _diag_raw(text):
    try:
        os.write(2, text.encode("utf-8", "replace"))
    except OSError:
        pass


class StdinReader:
    """Replacement for sys.stdin: reads go through input_request/input_reply."""

    encoding = "utf-8"

    def __init__(self, worker):
        self.worker = worker

    def readable(self):
        return True

    def isatty(self):
        return False

    def readline(self, size=-1):
        try:
            return self.worker.request_input("", False) + "\n"
        except EOFError:
            return ""

    def read(self, size=-1):
        return self.readline()

    def __iter__(self):
        while True:
            line = self.readline()
            if not line:
                return
            yield line

    def close(self):
        pass


class Worker:
    def __init__(self):
        self.store = Store()
        self.contexts = {}
        self.current_id = None
        self.interruptible = False
        self.critical = 0
        self.pending_interrupt = False
        self.inbox = queue.Queue()
        self.deferred = collections.deque()
        self.eof = False
        self.scratch = None  # created lazily (wand_worker.scratch)
        self.files = OutputFiles(self)
        self.warming = None  # the warm-up import thread, until the first request joins it
        self.module_mtimes = {}
        self.io_seq = 0

    # ---------------------------------------------------------------- setup
    def setup_fds(self):
        # protocol out: a private duplicate of the original stdout
        self.proto_out = os.dup(1)
        os.set_inheritable(self.proto_out, False)
        # fd 1 -> fd 2 so C-level prints and child processes cannot corrupt the protocol
        sys.stdout.flush()
        os.dup2(2, 1)
        # protocol in: a private duplicate of stdin; fd 0 -> /dev/null
        self.proto_in = os.dup(0)
        os.set_inheritable(self.proto_in, False)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        # Frames can be hundreds of megabytes: a larger pipe means fewer wake-ups on both sides.
        for fd in (self.proto_out, self.proto_in):
            try:
                import fcntl

                fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
            except (ImportError, OSError):
                pass  # not a pipe, not Linux, or above /proc/sys/fs/pipe-max-size
        self.writer = protocol.FrameWriter(self.proto_out)
        self.stdout = StreamWriter(self, "stdout")
        self.stderr = StreamWriter(self, "stderr")
        sys.stdout = self.stdout
        sys.stderr = self.stderr
        sys.stdin = StdinReader(self)
        builtins.input = self.builtin_input
        try:
            import getpass

            getpass.getpass = self.builtin_getpass
        except ImportError:  # pragma: no cover
            pass
        if SHIM_DIR in sys.path:
            sys.path.remove(SHIM_DIR)
        sys.path.insert(0, SHIM_DIR)
        signal.signal(signal.SIGINT, self._on_sigint)

    # ------------------------------------------------------------- signals
    def _on_sigint(self, signum, frame):
        if self.interruptible:
            if self.critical:
                self.pending_interrupt = True
                return
            raise KeyboardInterrupt
        # idle: nothing to interrupt

    def _enter_critical(self):
        if threading.current_thread() is threading.main_thread():
            self.critical += 1
            return True
        return False

    def _leave_critical(self, entered):
        if not entered:
            return
        self.critical -= 1
        if self.critical == 0 and self.pending_interrupt and self.interruptible:
            self.pending_interrupt = False
            raise KeyboardInterrupt

    # ------------------------------------------------------------- sending
    def send(self, header, payload=b""):
        entered = self._enter_critical()
        try:
            self.writer.send(header, payload)
        except (BrokenPipeError, OSError) as e:
            _diag("cannot write to the engine (%s); exiting" % e)
            os._exit(1)
        finally:
            self._leave_critical(entered)

    def flush_streams(self):
        self.stdout.flush()
        self.stderr.flush()

    def reply(self, header, payload=b""):
        """Send the final reply of the current request. Pending stream text is flushed first and
        the request stops being current, so no `stream` event for it can follow the reply (text
        written later, e.g. by a user thread, goes to the worker's stderr)."""
        with self.stdout.lock, self.stderr.lock:
            self.stdout.flush()
            self.stderr.flush()
            self.current_id = None
        self.send(header, payload)

    # ------------------------------------------------------------- reading
    def _reader_thread(self):
        while True:
            try:
                frame = protocol.read_frame(self.proto_in)
            except protocol.HeaderError as e:
                self.inbox.put(("bad", str(e), e.msg_id))
                continue
            except protocol.FramingError as e:
                self.inbox.put(("fatal", str(e)))
                return
            except OSError as e:
                self.inbox.put(("fatal", "cannot read stdin: %s" % e))
                return
            if frame is None:
                self.inbox.put(("eof",))
                return
            header, payload = frame
            if header["type"] == "interrupt":
                # out of band: interrupt the running request, if any
                if self.interruptible:
                    import _thread

                    _thread.interrupt_main()
                continue
            self.inbox.put(("msg", header, payload))

    def next_item(self):
        if self.deferred:
            return self.deferred.popleft()
        return self.inbox.get()

    def request_input(self, prompt, password):
        rid = self.current_id
        if rid is None or self.eof:
            raise EOFError("no engine request is active to answer input()")
        self.flush_streams()
        self.send({"type": "input_request", "id": rid, "prompt": str(prompt), "password": bool(password)})
        while True:
            item = self.inbox.get()
            if item[0] == "msg" and item[1]["type"] == "input_reply":
                header = item[1]
                if header.get("id") != rid:
                    continue  # stale reply for an earlier request: dropped
                value = header.get("value")
                if value is None:
                    raise EOFError("EOF when reading a line")
                return str(value)
            if item[0] in ("eof", "fatal"):
                self.deferred.append(item)
                self.eof = True
                raise EOFError("engine closed the input stream")
            self.deferred.append(item)

    def request_io(self, fields, payload=b""):
        """Asks the engine to do database work for the running request (io_request /
        io_reply, PROTOCOL.md 6.14); returns the reply header and payload."""
        rid = self.current_id
        if rid is None or self.eof:
            raise RuntimeError("no engine request is active to answer an io_request")
        self.flush_streams()
        self.io_seq += 1
        io_id = self.io_seq
        header = dict(fields)
        header.update({"type": "io_request", "id": rid, "io_id": io_id})
        self.send(header, payload)
        while True:
            item = self.inbox.get()
            if item[0] == "msg" and item[1]["type"] == "io_reply":
                if item[1].get("io_id") != io_id:
                    continue  # reply to an interrupted earlier request: dropped
                return item[1], item[2]
            if item[0] in ("eof", "fatal"):
                self.deferred.append(item)
                self.eof = True
                raise RuntimeError("the engine closed the stream during an io_request")
            self.deferred.append(item)

    def builtin_input(self, prompt=""):
        return self.request_input(prompt, False)

    def builtin_getpass(self, prompt="Password: ", stream=None):
        return self.request_input(prompt, True)

    # ------------------------------------------------------------ main loop
    def hello(self):
        info = {
            "type": "hello",
            "protocol": PROTOCOL_VERSION,
            "pid": os.getpid(),
            "python": "%d.%d.%d" % sys.version_info[:3],
            "python_executable": sys.executable,
            "shim_path": SHIM_DIR,
        }
        # Versions from the packages' `.dist-info` folders: importing pandas and pyarrow here
        # would make the engine wait for them (and polars would be imported for nothing).
        for mod in ("pandas", "pyarrow", "polars", "numpy"):
            info[mod] = _installed_version(mod)
        self.send(info)

    def warm_up(self):
        """Imports pandas and pyarrow on a thread while `hello` is made and travels and the
        first request is read. Requests wait for it (`dispatch`): user code never runs beside
        this import. (A block calling `os.system` while pyarrow loaded on another thread got
        exit status 127, no shell, about one time in three; and nearly every block imports
        pandas first thing, which would wait for this import anyway.)"""

        def load():
            try:
                from wand_worker import codec  # noqa: F401 (pandas, numpy, pyarrow)
            except Exception:
                pass  # reported by the request that needs it

        self.warming = threading.Thread(target=load, name="wand-warm-up", daemon=True)
        self.warming.start()

    def run(self):
        self.setup_fds()
        self.warm_up()  # first: importing pandas is most of a worker's start
        self.hello()
        t = threading.Thread(target=self._reader_thread, name="wand-reader", daemon=True)
        t.start()
        while True:
            item = self.next_item()
            kind = item[0]
            if kind == "eof":
                self.files.drain()
                _cache_bytecode()
                return 0
            if kind == "fatal":
                msg = "broken framing on stdin: %s" % item[1]
                _diag(msg + "; exiting")
                try:
                    self.send({"type": "error", "id": None, "message": msg, "fatal": True})
                except Exception:
                    pass
                return 2
            if kind == "bad":
                self.send({"type": "error", "id": item[2], "message": "malformed message: %s" % item[1]})
                continue
            header, payload = item[1], item[2]
            if header["type"] == "shutdown":
                self.files.drain()
                if header.get("id") is not None:
                    self.send({"type": "ok", "id": header["id"]})
                _cache_bytecode()
                return 0
            self.dispatch(header, payload)

    def dispatch(self, header, payload):
        if self.warming is not None:
            self.warming.join()
            self.warming = None
        from wand_worker import handlers

        mtype = header["type"]
        rid = header.get("id")
        fn = handlers.HANDLERS.get(mtype)
        if fn is None:
            if mtype in ("input_reply", "io_reply"):
                return  # stale reply (input() already interrupted): dropped
            self.send({"type": "error", "id": rid, "message": "unknown message type %r" % mtype})
            return
        if rid is None:
            self.send({"type": "error", "id": None, "message": "message %r requires an integer 'id'" % mtype})
            return
        self.current_id = rid
        self.pending_interrupt = False
        try:
            fn(self, header, payload)
        except KeyboardInterrupt:
            self.interruptible = False
            self.reply({"type": "error", "id": rid, "message": "interrupted", "ename": "KeyboardInterrupt"})
        except Exception as e:
            self.interruptible = False
            tb = traceback.format_exc()
            _diag("internal error handling %s: %s" % (mtype, tb))
            self.reply({"type": "error", "id": rid, "message": "%s: %s" % (type(e).__name__, e)})
        finally:
            self.interruptible = False
            self.pending_interrupt = False
            self.flush_streams()
            self.current_id = None


def main():
    global CURRENT
    worker = Worker()
    CURRENT = worker
    try:
        code = worker.run()
    except KeyboardInterrupt:
        code = 130
    try:
        worker.flush_streams()
    except Exception:
        pass
    sys.stdout = sys.__stdout__
    sys.stderr = sys.__stderr__
    return code
