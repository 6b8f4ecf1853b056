"""run_block: execute a Mage Python block file as Mage's `_execute_block` does (spec 4.1-4.5)."""

import datetime
import importlib
import inspect
import os
import re
import sys
import time
import traceback

from wand_worker import collector
from wand_worker.collector import Collector

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))

# block type -> decorator names whose functions are the block function
BLOCK_DECORATORS = {
    "conditional": ("condition",),
    "callback": ("callback", "on_success", "on_failure"),
}
DATETIME_KEYS = (
    "execution_date",
    "interval_start_datetime",
    "interval_end_datetime",
    "interval_start_datetime_previous",
)


class BlockError(Exception):
    """An error reported as Mage reports it (plain Exception with a message)."""


# ------------------------------------------------------------------ helpers
def _has_var_kw(fn):
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return False
    return any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())


def _call(fn, args, kwargs):
    """Mage's execute_block_function: kwargs only if the function declares **kwargs."""
    if _has_var_kw(fn) and kwargs:
        return fn(*args, **kwargs)
    return fn(*args)


def _validate(fn, block_uuid, block_type, decorator, num_inputs, num_upstream):
    sig = inspect.signature(fn)
    num_args = sum(
        p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in sig.parameters.values()
    )
    has_var_args = num_args != len(sig.parameters)
    at_least = "at least " if has_var_args else ""
    if num_args > num_inputs:
        if num_upstream < num_args:
            raise BlockError(
                "Block %s may be missing upstream dependencies. It expected to have %s%d arguments, "
                "but only received %d. Confirm that the @%s method declaration has the correct number "
                "of arguments." % (block_uuid, at_least, num_args, num_inputs, decorator)
            )
        raise BlockError(
            "Block %s is missing input arguments. It expected to have %s%d arguments, but only "
            "received %d. Double check the @%s method declaration has the correct number of arguments "
            "and that the upstream blocks have been executed."
            % (block_uuid, at_least, num_args, num_inputs, decorator)
        )
    if num_args < num_inputs and not has_var_args:
        if num_upstream > num_args:
            raise BlockError(
                "Block %s may have too many upstream dependencies. It expected to have %d arguments, "
                "but received %d. Confirm that the @%s method declaration has the correct number of "
                "arguments." % (block_uuid, num_args, num_inputs, decorator)
            )
        raise BlockError(
            "Block %s has too many input arguments. It expected to have %d arguments, but received %d. "
            "Confirm that the @%s method declaration has the correct number of arguments."
            % (block_uuid, num_args, num_inputs, decorator)
        )


def normalise_outputs(result):
    """Spec 4.4: None -> [], tuple -> items, list -> as-is, else [R]."""
    if result is None:
        return []
    if isinstance(result, tuple):
        return list(result)
    if type(result) is list:
        return result
    return [result]


def _user_tb(tb):
    """Skip the worker's own frames at the top of a traceback."""
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(PACKAGE_DIR + os.sep):
        tb = tb.tb_next
    return tb


def _lineno_in(exc, tb, file_path):
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == file_path:
            line = tb.tb_lineno
        tb = tb.tb_next
    if line is None and isinstance(exc, SyntaxError) and exc.filename == file_path:
        line = exc.lineno
    return line


def error_info(exc, file_path=None):
    tb = _user_tb(exc.__traceback__)
    lines = []
    for chunk in traceback.format_exception(type(exc), exc, tb):
        lines.extend(chunk.rstrip("\n").split("\n"))
    info = {
        "ename": type(exc).__name__,
        "evalue": str(exc),
        "traceback": lines,
        "lineno": _lineno_in(exc, tb, file_path) if file_path else None,
    }
    return info


def _def_lineno(fn, source_lines):
    first = fn.__code__.co_firstlineno  # points at the first decorator line
    for i in range(first - 1, min(len(source_lines), first + 200)):
        if re.match(r"\s*(async\s+)?def\s", source_lines[i]):
            return i + 1
    return first


def _parse_datetimes(gv):
    for k in DATETIME_KEYS:
        v = gv.get(k)
        if isinstance(v, str):
            try:
                gv[k] = datetime.datetime.fromisoformat(v.replace("Z", "+00:00") if v.endswith("Z") else v)
            except ValueError:
                pass


# ------------------------------------------------------- project handling
def prepare_project(worker, project_path, cwd=None):
    """sys.path gets the project's PARENT (spec 1.1); CWD = that parent; stale modules dropped."""
    if not project_path:
        return
    project_path = os.path.abspath(project_path)
    parent = os.path.dirname(project_path)
    if parent not in sys.path:
        # after the shim dir (index 0) so the shim keeps priority
        sys.path.insert(1, parent)
    os.environ["MAGE_REPO_PATH"] = project_path
    worker.project_path = project_path
    target = cwd or parent
    if os.path.isdir(target):
        os.chdir(target)
    drop_stale_modules(worker, project_path)


def _module_file(mod):
    f = getattr(mod, "__file__", None)
    return os.path.abspath(f) if isinstance(f, str) else None


def _mtime(path):
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def drop_stale_modules(worker, project_path):
    """Remove from sys.modules every module under the project whose file changed (or vanished)
    since it was imported, so the next import re-reads it (mage-ai issue 2435)."""
    prefix = project_path + os.sep
    stale = []
    for name, mod in list(sys.modules.items()):
        f = _module_file(mod)
        if not f or not f.startswith(prefix):
            continue
        known = worker.module_mtimes.get(name)
        now = _mtime(f)
        if known is None:
            worker.module_mtimes[name] = (f, now)
        elif known != (f, now):
            stale.append(name)
    for name in stale:
        sys.modules.pop(name, None)
        worker.module_mtimes.pop(name, None)
        # a parent package keeps the stale submodule as an attribute: drop it too
        parent, _, child = name.rpartition(".")
        if parent and parent in sys.modules and getattr(sys.modules[parent], child, None) is not None:
            try:
                delattr(sys.modules[parent], child)
            except AttributeError:
                pass
    if stale:
        importlib.invalidate_caches()


def record_modules(worker, project_path):
    if not project_path:
        return
    prefix = os.path.abspath(project_path) + os.sep
    for name, mod in list(sys.modules.items()):
        if name in worker.module_mtimes:
            continue
        f = _module_file(mod)
        if f and f.startswith(prefix):
            worker.module_mtimes[name] = (f, _mtime(f))


# ----------------------------------------------------------------- running
def run_block(worker, req):
    rid = req["id"]
    block_uuid = req.get("block_uuid") or "block"
    block_type = req.get("block_type") or "custom"
    file_path = req.get("file_path")
    project_path = req.get("project_path")
    frame_kind = req.get("frame_kind")
    upstream_keys = list(req.get("upstream_keys") or [])
    run_tests = bool(req.get("run_tests", False))
    callback_status = req.get("callback_status", "success")
    decorators = BLOCK_DECORATORS.get(block_type, (block_type,))

    result = {
        "type": "block_result",
        "id": rid,
        "block_uuid": block_uuid,
        "status": "ok",
        "outputs": [],
        "tests": [],
        "tests_passed": 0,
        "tests_total": 0,
        "error": None,
        "duration_user_s": 0.0,
    }
    encoded = []
    user_time = 0.0
    source_lines = []
    outputs = None
    try:
        try:
            if file_path and not os.path.isabs(file_path) and project_path:
                file_path = os.path.join(os.path.dirname(os.path.abspath(project_path)), file_path)
            prepare_project(worker, project_path, req.get("cwd"))
            if not file_path:
                raise BlockError("run_block needs 'file_path'")
            file_path = os.path.abspath(file_path)
            with open(file_path, encoding="utf-8") as fh:
                source = fh.read()
            source_lines = source.splitlines()

            inputs = []
            for key in upstream_keys:
                try:
                    inputs.append(worker.store.downstream(key, frame_kind))
                except KeyError:
                    raise BlockError(
                        "Block %s's upstream block %s has no output in the worker. Run or load the "
                        "upstream block before running the current block." % (block_uuid, key)
                    ) from None

            run_id = req.get("run_id")
            context = worker.contexts.setdefault(run_id, {})
            global_vars = dict(req.get("global_vars") or {})
            _parse_datetimes(global_vars)
            global_vars.setdefault("configuration", req.get("configuration") or {})
            global_vars.setdefault("pipeline_uuid", req.get("pipeline_uuid"))
            global_vars.setdefault("block_uuid", block_uuid)
            global_vars.setdefault("repo_path", os.path.abspath(project_path) if project_path else None)
            global_vars.setdefault("context", context)

            coll = Collector()
            g = {"preprocesser": coll.decorator("preprocesser"), "test": coll.decorator("test")}
            for name in decorators:
                g[name] = coll.decorator(name)
            for i, key in enumerate(upstream_keys):
                g[key] = inputs[i]
                g["df_%d" % (i + 1)] = inputs[i]

            code = compile(source, file_path, "exec")
            worker.interruptible = True
            prev = collector.current
            collector.current = coll
            try:
                exec(code, g)
            finally:
                collector.current = prev

            t0 = time.perf_counter()
            try:
                for pre in coll.functions(("preprocesser",)):
                    _call(pre, inputs, global_vars)
                if block_type == "callback":
                    fns = coll.functions(decorators, status=callback_status)
                    for fn in fns:
                        _call(fn, inputs, global_vars)
                    outputs = []
                else:
                    fns = coll.functions(decorators)
                    if not fns:
                        raise BlockError(
                            "Block %s does not have any decorated functions. Make sure that a function "
                            "in the block is decorated with @%s." % (block_uuid, block_type)
                        )
                    fn = fns[0]
                    _validate(fn, block_uuid, block_type, block_type, len(inputs), len(upstream_keys))
                    outputs = normalise_outputs(_call(fn, inputs, global_vars))
            finally:
                user_time += time.perf_counter() - t0
            worker.store.set_outputs(block_uuid, outputs)

            if run_tests:
                tests = coll.functions(("test",))
                t0 = time.perf_counter()
                try:
                    results = _run_tests(tests, outputs, global_vars, block_uuid, file_path, source_lines)
                finally:
                    user_time += time.perf_counter() - t0
                passed = sum(1 for r in results if r["passed"])
                result["tests"] = results
                result["tests_passed"] = passed
                result["tests_total"] = len(results)
                if results:
                    print("%d/%d tests passed." % (passed, len(results)))
                if passed < len(results):
                    raise BlockError("Failed to pass tests for block %s" % block_uuid)
        finally:
            worker.interruptible = False
    except BaseException as e:  # KeyboardInterrupt and SystemExit included: report, stay alive
        if isinstance(e, (GeneratorExit,)):
            raise
        worker.interruptible = False
        result["status"] = "error"
        info = error_info(e, file_path)
        if isinstance(e, BlockError):
            info["ename"] = "Exception"  # Mage raises plain Exception
            info["traceback"] = ["Exception: %s" % e]
        result["error"] = info
    finally:
        record_modules(worker, project_path)

    result["duration_user_s"] = round(user_time, 6)
    files = []
    if outputs is not None:
        from wand_worker import codec  # imported here: the block ran while pyarrow loaded

        # Frames of a block that succeeded go to files the worker writes itself (6.6.6).
        output_dir = req.get("output_dir") if result["status"] == "ok" else None
        for i, value in enumerate(outputs):
            if output_dir:
                meta, table, data = codec.encode_for_file(value, defer_pandas=worker.files.converts_later)
            else:
                (meta, data), table = codec.encode(value), None
            meta["index"] = i
            if table is not None:
                meta["path"] = os.path.join(output_dir, "output_%d" % i, "data.parquet")
                files.append((i, table, meta["path"]))
            else:
                encoded.append((meta, data))
            result["outputs"].append(dict(meta))
    worker.reply(result)
    for meta, data in encoded:
        msg = {"type": "output", "id": rid, "block_uuid": block_uuid}
        msg.update(meta)
        worker.send(msg, data)
    for index, frame, path in files:
        worker.files.submit(rid, index, frame, path)


def _assert_lineno(tb, file_path):
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == file_path:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _run_tests(tests, outputs, global_vars, block_uuid, file_path, source_lines):
    results = []
    for fn in tests:
        entry = {
            "name": fn.__name__,
            "passed": True,
            "message": None,
            "lineno": _def_lineno(fn, source_lines),
            "assert_lineno": None,
            "traceback": None,
        }
        try:
            _call(fn, outputs, global_vars)
        except AssertionError as e:
            info = error_info(e, file_path)
            entry.update(
                {
                    "passed": False,
                    "message": str(e),
                    "assert_lineno": _assert_lineno(e.__traceback__, file_path),
                    "traceback": info["traceback"],
                }
            )
            print("FAIL: %s (block: %s)" % (fn.__name__, block_uuid))
            print("\n".join(info["traceback"]))
        results.append(entry)
    return results
