"""`exec` and `complete` requests on the persistent scratch namespace."""

import ast
import keyword
import linecache
import re
import rlcompleter

from wand_worker import codec
from wand_worker.runner import error_info


class Scratch:
    def __init__(self, worker):
        self.ns = {"__name__": "__main__", "__builtins__": __builtins__}
        self.ns["display"], self.ns["clear_output"] = _display_functions(worker)
        self.synced = {}  # key -> store version last copied into ns
        self.counter = 0

    def sync(self, store):
        """Every stored value whose key is an identifier is visible as a variable; a variable is
        refreshed only when its stored value changed, so user re-assignments persist until then."""
        for key, version in store.versions.items():
            if not key.isidentifier() or keyword.iskeyword(key):
                continue
            if self.synced.get(key) == version:
                continue
            self.synced[key] = version
            if store.has(key):
                try:
                    self.ns[key] = store.downstream(key)
                except KeyError:
                    continue
            else:
                self.ns.pop(key, None)


def _bundle(value):
    """The MIME bundle of a value: text/plain always, text/html for frames."""
    data = {"text/plain": _repr(value)}
    html = codec.html_repr(value)
    if html is not None:
        data["text/html"] = html
    return data


def _display_functions(worker):
    """IPython's `display` and `clear_output` for scratch cells, sent to the kernel as `display`
    and `clear_output` messages of the running request (PROTOCOL.md 6.15). Text printed before a
    call is sent before it, so outputs keep their order."""

    def send(header):
        if worker.current_id is None:
            return  # not inside a request (a thread still running after its cell ended)
        worker.stdout.flush()
        worker.stderr.flush()
        header["id"] = worker.current_id
        worker.send(header)

    def display(*objs, display_id=None, update=False, **kwargs):
        if display_id is True:
            import uuid

            display_id = uuid.uuid4().hex
        for obj in objs:
            data = obj if kwargs.get("raw") and isinstance(obj, dict) else _bundle(obj)
            send({"type": "display", "data": data, "display_id": display_id, "update": bool(update and display_id)})
        return display_id

    def clear_output(wait=False):
        send({"type": "clear_output", "wait": bool(wait)})

    return display, clear_output


def _scratch(worker):
    if worker.scratch is None:
        worker.scratch = Scratch(worker)
    worker.scratch.sync(worker.store)
    return worker.scratch


def run_exec(worker, req):
    rid = req["id"]
    code = req.get("code") or ""
    ns_name = req.get("namespace", "scratch")
    if ns_name != "scratch":
        worker.reply({"type": "error", "id": rid, "message": "unknown namespace %r" % (ns_name,)})
        return
    sc = _scratch(worker)
    sc.counter += 1
    filename = "<scratch-%d>" % sc.counter
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    reply = {"type": "exec_result", "id": rid, "status": "ok", "execute_result": None, "error": None}
    try:
        worker.interruptible = True
        try:
            tree = ast.parse(code, filename, "exec")
            last = None
            if tree.body and isinstance(tree.body[-1], ast.Expr):
                last = ast.Expression(tree.body.pop().value)
            exec(compile(tree, filename, "exec"), sc.ns)
            value = None
            if last is not None:
                value = eval(compile(last, filename, "eval"), sc.ns)
        finally:
            worker.interruptible = False
        if value is not None:
            sc.ns["_"] = value
            reply["execute_result"] = {"data": _bundle(value), "python_type": codec.python_type(value)}
    except BaseException as e:
        worker.interruptible = False
        reply["status"] = "error"
        reply["error"] = error_info(e)
    worker.reply(reply)


def _repr(value):
    try:
        return repr(value)
    except Exception as e:
        return "<repr failed: %s: %s>" % (type(e).__name__, e)




def run_complete(worker, req):
    rid = req["id"]
    code = req.get("code") or ""
    pos = req.get("cursor_pos")
    if not isinstance(pos, int) or pos < 0 or pos > len(code):
        pos = len(code)
    sc = _scratch(worker)
    before = code[:pos]
    m = re.search(r"[A-Za-z_][\w.]*$", before)
    text = m.group(0) if m else ""
    start = pos - len(text)
    completer = rlcompleter.Completer(sc.ns)
    matches = []
    if text:
        state = 0
        while state < 1000:
            try:
                cand = completer.complete(text, state)
            except Exception:
                cand = None
            if cand is None:
                break
            cand = cand.rstrip("(")
            if cand not in matches:
                matches.append(cand)
            state += 1
    worker.reply(
        {"type": "complete_reply", "id": rid, "matches": matches, "cursor_start": start, "cursor_end": pos}
    )
