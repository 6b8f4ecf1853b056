"""Spawns the worker as a real subprocess and talks the wire protocol to it."""

import json
import os
import signal
import struct
import sys
import textwrap
import time

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from conftest import Worker

try:
    import polars as pl
except ImportError:  # pragma: no cover
    pl = None


def dedent(s):
    return textwrap.dedent(s).lstrip("\n")


def arrow_bytes(table):
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return sink.getvalue().to_pybytes()


def read_arrow(payload):
    return pa.ipc.open_stream(pa.py_buffer(payload)).read_all()


def line_of(path, text):
    """1-based number of the first line of `path` containing `text`."""
    for i, line in enumerate(open(path).read().splitlines(), 1):
        if text in line:
            return i
    raise AssertionError("%r not in %s" % (text, path))


def json_of(msg):
    assert msg["encoding"] == "json", msg
    return json.loads(msg["_payload"])


def outputs_of(msgs):
    return [m for m in msgs if m["type"] == "output"]


def put_json(w, key, value, index=0, count=1):
    final, _ = w.request("put_value", payload=json.dumps(value).encode(), key=key, encoding="json",
                         index=index, count=count)
    assert final["type"] == "ok", final


LOADER_HDR = """
if 'data_loader' not in globals():
    from mage_ai.data_preparation.decorators import data_loader
if 'test' not in globals():
    from mage_ai.data_preparation.decorators import test
"""

TRANSFORMER_HDR = """
if 'transformer' not in globals():
    from mage_ai.data_preparation.decorators import transformer
if 'test' not in globals():
    from mage_ai.data_preparation.decorators import test
"""


# ----------------------------------------------------------------- basics
def test_hello(worker):
    h = worker.hello
    assert h["protocol"] == 1
    assert h["pid"] == worker.proc.pid
    assert h["pandas"] == pd.__version__
    assert h["pyarrow"] == pa.__version__
    assert ("polars" in h) and (h["polars"] == (pl.__version__ if pl else None))


def test_the_worker_caches_its_bytecode_when_it_exits(tmp_path):
    """Later workers then skip compiling the worker's modules, also under
    PYTHONDONTWRITEBYTECODE (a Docker habit): the folder is Wand's, not the user's."""
    import importlib.util
    import shutil

    from conftest import KERNEL_PY

    copy = tmp_path / "worker"
    for package in ("wand_worker", "mage_ai"):
        shutil.copytree(os.path.join(KERNEL_PY, package), copy / package, ignore=shutil.ignore_patterns("__pycache__"))
    w = Worker(env={"PYTHONPATH": str(copy), "PYTHONDONTWRITEBYTECODE": "1"})
    assert w.hello["shim_path"] == str(copy)
    assert not (copy / "wand_worker" / "__pycache__").exists()
    w.close()
    for module in ("wand_worker/worker.py", "wand_worker/runner.py", "mage_ai/data_preparation/decorators.py"):
        assert os.path.exists(importlib.util.cache_from_source(str(copy / module))), module


def test_argument_order_follows_upstream_order(worker, project):
    put_json(worker, "a", "A")
    put_json(worker, "b", "B")
    f = project.block("transformers/t.py", TRANSFORMER_HDR + dedent("""
        @transformer
        def t(first, second):
            return [first, second, df_1, df_2, a]
    """))
    final, msgs = worker.run_block(block_uuid="t", block_type="transformer", file_path=f,
                                   project_path=project.path, upstream_keys=["b", "a"])
    assert final["status"] == "ok", final
    assert [json_of(o) for o in outputs_of(msgs)] == ["B", "A", "B", "A", "A"]


def test_list_and_tuple_outputs_and_downstream_view(worker, project):
    f_tuple = project.block("data_loaders/tup.py", LOADER_HDR + dedent("""
        @data_loader
        def load():
            return 1, {'meta': True}
    """))
    f_list = project.block("data_loaders/lst.py", LOADER_HDR + dedent("""
        @data_loader
        def load():
            return [10, 20, 30]
    """))
    f_single = project.block("data_loaders/single.py", LOADER_HDR + dedent("""
        @data_loader
        def load():
            return ['only']
    """))
    f_none = project.block("data_loaders/none.py", LOADER_HDR + dedent("""
        @data_loader
        def load():
            print('nothing')
    """))
    for uuid, f in (("tup", f_tuple), ("lst", f_list), ("single", f_single), ("none", f_none)):
        final, msgs = worker.run_block(block_uuid=uuid, block_type="data_loader", file_path=f,
                                       project_path=project.path)
        assert final["status"] == "ok", final
        if uuid == "tup":
            assert [json_of(o) for o in outputs_of(msgs)] == [1, {"meta": True}]
        if uuid == "lst":
            assert [o["index"] for o in final["outputs"]] == [0, 1, 2]
        if uuid == "none":
            assert final["outputs"] == [] and outputs_of(msgs) == []
    f_down = project.block("transformers/down.py", TRANSFORMER_HDR + dedent("""
        @transformer
        def t(tup, lst, single, none):
            return {'tup': tup, 'lst': lst, 'single': single, 'none': none}
    """))
    final, msgs = worker.run_block(block_uuid="down", block_type="transformer", file_path=f_down,
                                   project_path=project.path,
                                   upstream_keys=["tup", "lst", "single", "none"])
    assert final["status"] == "ok", final
    assert json_of(outputs_of(msgs)[0]) == {
        "tup": [1, {"meta": True}], "lst": [10, 20, 30], "single": "only", "none": []}


def test_multi_output_put_value_with_count(worker, project):
    put_json(worker, "up", {"x": 1}, index=0, count=2)
    put_json(worker, "up", [1, 2], index=1, count=2)
    final, _ = worker.request("put_value", key="empty", encoding="json", index=0, count=0)
    assert final["type"] == "ok"
    f = project.block("custom/c.py", dedent("""
        @custom
        def c(up, empty):
            return {'up': up, 'empty': empty}
    """))
    final, msgs = worker.run_block(block_uuid="c", file_path=f, project_path=project.path,
                                   upstream_keys=["up", "empty"])
    assert final["status"] == "ok", final
    assert json_of(outputs_of(msgs)[0]) == {"up": [{"x": 1}, [1, 2]], "empty": []}
    value, _ = worker.request("get_value", key="up", index=1)
    assert value["type"] == "value" and json.loads(value["_payload"]) == [1, 2] and value["count"] == 2
    err, _ = worker.request("get_value", key="nope")
    assert err["type"] == "error" and "nope" in err["message"]
    assert worker.request("delete_values", keys=["up"])[0]["type"] == "ok"
    err, _ = worker.request("get_value", key="up")
    assert err["type"] == "error"
    final, _ = worker.run_block(block_uuid="c", file_path=f, project_path=project.path,
                                upstream_keys=["up", "empty"])
    assert final["status"] == "error" and "upstream block up has no output" in final["error"]["evalue"]


def test_kwargs_only_with_var_keyword(worker, project):
    f_no = project.block("custom/no_kw.py", dedent("""
        @custom
        def c():
            return 'no kwargs'
    """))
    gv = {"env": "dev", "my_var": 5, "execution_date": "2024-01-02T03:04:05"}
    final, msgs = worker.run_block(block_uuid="no_kw", file_path=f_no, project_path=project.path,
                                   global_vars=gv, configuration={"k": "v"}, run_id="r1")
    assert final["status"] == "ok", final
    assert json_of(outputs_of(msgs)[0]) == "no kwargs"
    f_kw = project.block("custom/kw.py", dedent("""
        @custom
        def c(*args, **kwargs):
            kwargs['context']['n'] = kwargs['context'].get('n', 0) + 1
            return {
                'keys': sorted(kwargs),
                'my_var': kwargs['my_var'],
                'configuration': kwargs['configuration'],
                'block_uuid': kwargs['block_uuid'],
                'pipeline_uuid': kwargs['pipeline_uuid'],
                'repo_path': kwargs['repo_path'],
                'year': kwargs['execution_date'].year,
                'n': kwargs['context']['n'],
            }
    """))
    for expected_n in (1, 2):
        final, msgs = worker.run_block(block_uuid="kw", file_path=f_kw, project_path=project.path,
                                       global_vars=gv, configuration={"k": "v"}, run_id="r1")
        assert final["status"] == "ok", final
        out = json_of(outputs_of(msgs)[0])
        assert out["n"] == expected_n  # context shared within the run
    assert out["my_var"] == 5 and out["configuration"] == {"k": "v"}
    assert out["block_uuid"] == "kw" and out["pipeline_uuid"] == "p"
    assert out["repo_path"] == project.path and out["year"] == 2024
    assert {"context", "env", "my_var", "configuration"} <= set(out["keys"])
    final, msgs = worker.run_block(block_uuid="kw", file_path=f_kw, project_path=project.path,
                                   global_vars=gv, run_id="r2")
    assert json_of(outputs_of(msgs)[0])["n"] == 1  # new run, new context
    assert worker.request("end_run", run_id="r1")[0]["type"] == "ok"
    final, msgs = worker.run_block(block_uuid="kw", file_path=f_kw, project_path=project.path,
                                   global_vars=gv, run_id="r1")
    assert json_of(outputs_of(msgs)[0])["n"] == 1  # context forgotten by end_run


# ------------------------------------------------------------------ tests
def test_tests_receive_all_outputs_unpacked(worker, project):
    f = project.block("data_loaders/l.py", LOADER_HDR + dedent("""
        @data_loader
        def load():
            return 1, 2, 3

        @test
        def test_all(a, b, c):
            assert (a, b, c) == (1, 2, 3)

        @test
        def test_star(output, *args):
            assert output == 1 and args == (2, 3)

        @test
        def test_kw(*args, **kwargs):
            assert kwargs['block_uuid'] == 'l'
    """))
    final, msgs = worker.run_block(block_uuid="l", block_type="data_loader", file_path=f,
                                   project_path=project.path, run_tests=True)
    assert final["status"] == "ok", final
    assert (final["tests_passed"], final["tests_total"]) == (3, 3)
    assert all(t["passed"] for t in final["tests"])
    text = "".join(m["text"] for m in msgs if m["type"] == "stream")
    assert "3/3 tests passed." in text


def test_failing_test_fails_block(worker, project):
    f = project.block("data_loaders/l.py", LOADER_HDR + dedent("""
        @data_loader
        def load():
            return 5

        @test
        def test_ok(output, *args):
            assert output == 5

        @test
        def test_bad(output, *args):
            x = 1
            assert output == 6, 'output should be 6'
    """))
    final, msgs = worker.run_block(block_uuid="l", block_type="data_loader", file_path=f,
                                   project_path=project.path, run_tests=True)
    assert final["status"] == "error"
    assert (final["tests_passed"], final["tests_total"]) == (1, 2)
    assert final["error"]["ename"] == "Exception"
    assert final["error"]["evalue"] == "Failed to pass tests for block l"
    bad = final["tests"][1]
    assert bad["name"] == "test_bad" and not bad["passed"]
    assert bad["message"] == "output should be 6"
    lines = open(f).read().splitlines()
    assert lines[bad["lineno"] - 1].startswith("def test_bad")
    assert "assert output == 6" in lines[bad["assert_lineno"] - 1]
    text = "".join(m["text"] for m in msgs if m["type"] == "stream")
    assert "1/2 tests passed." in text and "FAIL: test_bad (block: l)" in text
    # tests are not run unless asked
    final, _ = worker.run_block(block_uuid="l", block_type="data_loader", file_path=f,
                                project_path=project.path)
    assert final["status"] == "ok" and final["tests_total"] == 0


def test_non_assertion_error_in_test_is_block_error(worker, project):
    f = project.block("data_loaders/l.py", LOADER_HDR + dedent("""
        @data_loader
        def load():
            return 5

        @test
        def test_boom(output, *args):
            raise ValueError('boom')

        @test
        def test_never(output, *args):
            assert False
    """))
    final, _ = worker.run_block(block_uuid="l", block_type="data_loader", file_path=f,
                                project_path=project.path, run_tests=True)
    assert final["status"] == "error"
    assert final["error"]["ename"] == "ValueError" and final["error"]["evalue"] == "boom"
    assert final["error"]["lineno"] == line_of(f, "raise ValueError('boom')")


def test_traceback_points_at_block_file(worker, project):
    f = project.block("transformers/t.py", TRANSFORMER_HDR + dedent("""
        def helper(x):
            return 1 / x

        @transformer
        def t(*args):
            return helper(0)
    """))
    final, _ = worker.run_block(block_uuid="t", block_type="transformer", file_path=f,
                                project_path=project.path)
    err = final["error"]
    assert final["status"] == "error" and err["ename"] == "ZeroDivisionError"
    assert err["lineno"] == line_of(f, "return 1 / x")
    tb = "\n".join(err["traceback"])
    assert 'File "%s", line %d, in helper' % (f, line_of(f, "return 1 / x")) in tb
    assert 'File "%s", line %d, in t' % (f, line_of(f, "return helper(0)")) in tb
    assert "wand_worker" not in tb
    # syntax errors carry the file's line too
    f2 = project.block("transformers/bad.py", "x = 1\ndef (:\n")
    final, _ = worker.run_block(block_uuid="bad", block_type="transformer", file_path=f2,
                                project_path=project.path)
    assert final["error"]["ename"] == "SyntaxError" and final["error"]["lineno"] == 2


def test_both_decorator_import_idioms(worker, project):
    f1 = project.block("transformers/plain_import.py", dedent("""
        from mage_ai.data_preparation.decorators import transformer, test

        @transformer
        def t(*args, **kwargs):
            return 'plain'

        @test
        def test_it(output):
            assert output == 'plain'
    """))
    f2 = project.block("transformers/globals_idiom.py", TRANSFORMER_HDR + dedent("""
        @transformer
        def t(*args, **kwargs):
            return 'idiom'

        @transformer
        def ignored(*args, **kwargs):
            return 'second decorated function is ignored'
    """))
    for uuid, f, expected in (("plain_import", f1, "plain"), ("globals_idiom", f2, "idiom")):
        final, msgs = worker.run_block(block_uuid=uuid, block_type="transformer", file_path=f,
                                       project_path=project.path, run_tests=True)
        assert final["status"] == "ok", final
        assert json_of(outputs_of(msgs)[0]) == expected
    assert final["tests_total"] == 0
    # callback('success') with an argument, plus the legacy on_failure
    f3 = project.block("callbacks/cb.py", dedent("""
        from mage_ai.data_preparation.decorators import callback, on_failure

        @callback('success')
        def ok(parent_block_data, **kwargs):
            print('success callback got', parent_block_data)

        @on_failure
        def bad(parent_block_data, **kwargs):
            print('failure callback')
    """))
    put_json(worker, "parent", 42)
    final, msgs = worker.run_block(block_uuid="cb", block_type="callback", file_path=f3,
                                   project_path=project.path, upstream_keys=["parent"])
    assert final["status"] == "ok", final
    text = "".join(m["text"] for m in msgs if m["type"] == "stream")
    assert text == "success callback got 42\n"


def test_missing_decorated_function(worker, project):
    f = project.block("data_exporters/e.py", dedent("""
        def export(*args):
            pass
    """))
    final, _ = worker.run_block(block_uuid="e", block_type="data_exporter", file_path=f,
                                project_path=project.path)
    assert final["status"] == "error"
    assert final["error"]["evalue"] == (
        "Block e does not have any decorated functions. "
        "Make sure that a function in the block is decorated with @data_exporter.")


def test_argument_count_errors(worker, project):
    put_json(worker, "u1", 1)
    put_json(worker, "u2", 2)
    f = project.block("data_exporters/e.py", dedent("""
        @data_exporter
        def export(a, b, c):
            pass
    """))
    final, _ = worker.run_block(block_uuid="e", block_type="data_exporter", file_path=f,
                                project_path=project.path, upstream_keys=["u1", "u2"])
    assert final["error"]["evalue"] == (
        "Block e may be missing upstream dependencies. It expected to have 3 arguments, but only "
        "received 2. Confirm that the @data_exporter method declaration has the correct number "
        "of arguments.")
    f = project.block("data_exporters/e2.py", dedent("""
        @data_exporter
        def export(a):
            pass
    """))
    final, _ = worker.run_block(block_uuid="e2", block_type="data_exporter", file_path=f,
                                project_path=project.path, upstream_keys=["u1", "u2"])
    assert final["error"]["evalue"] == (
        "Block e2 may have too many upstream dependencies. It expected to have 1 arguments, but "
        "received 2. Confirm that the @data_exporter method declaration has the correct number "
        "of arguments.")
    f = project.block("data_exporters/e3.py", dedent("""
        @data_exporter
        def export(a, b, c, *args, **kwargs):
            pass
    """))
    final, _ = worker.run_block(block_uuid="e3", block_type="data_exporter", file_path=f,
                                project_path=project.path, upstream_keys=["u1", "u2"])
    assert "expected to have at least 3 arguments, but only received 2" in final["error"]["evalue"]
    f = project.block("data_exporters/e4.py", dedent("""
        @data_exporter
        def export(a, *args):
            return len(args)
    """))
    final, msgs = worker.run_block(block_uuid="e4", block_type="data_exporter", file_path=f,
                                   project_path=project.path, upstream_keys=["u1", "u2"])
    assert final["status"] == "ok" and json_of(outputs_of(msgs)[0]) == 1


# ------------------------------------------------------------ dataframes
def test_pandas_frames_round_trip_through_arrow(worker, project):
    df = pd.DataFrame({"a": [1, 2, 3], "s": ["x", "y", None], "f": [0.5, None, 2.0]})
    final, _ = worker.request("put_value", payload=arrow_bytes(pa.Table.from_pandas(df, preserve_index=False)),
                              key="load", encoding="arrow")
    assert final["type"] == "ok", final
    f = project.block("transformers/t.py", TRANSFORMER_HDR + dedent("""
        import pandas as pd

        @transformer
        def t(df, *args, **kwargs):
            assert isinstance(df, pd.DataFrame), type(df)
            df = df.copy()
            df['b'] = df['a'] * 10
            indexed = df.set_index('s')
            return df, indexed, df['b']
    """))
    final, msgs = worker.run_block(block_uuid="t", block_type="transformer", file_path=f,
                                   project_path=project.path, upstream_keys=["load"])
    assert final["status"] == "ok", final
    o0, o1, o2 = outputs_of(msgs)
    assert o0["encoding"] == "arrow" and o0["rows"] == 3 and o0["columns"] == 4
    assert o0["python_type"] == "pandas.DataFrame" and o0["mage_type"] == "dataframe"
    assert [c["name"] for c in o0["schema"]] == ["a", "s", "f", "b"]
    got = read_arrow(o0["_payload"])
    assert got.column("b").to_pylist() == [10, 20, 30]
    assert got.column("s").to_pylist() == ["x", "y", None]
    # a meaningful index becomes a leading column, restored by pandas
    assert o1["index_columns"] == ["s"]
    t1 = read_arrow(o1["_payload"])
    assert t1.schema.names[0] == "s"
    back = t1.to_pandas()
    assert list(back.index[:2]) == ["x", "y"] and pd.isna(back.index[2])
    assert back.index.name == "s" and "s" not in back.columns
    # a Series becomes a one-column frame
    assert o2["mage_type"] == "series_pandas" and o2["columns"] == 1
    assert read_arrow(o2["_payload"]).column("b").to_pylist() == [10, 20, 30]
    value, _ = worker.request("get_value", key="t", index=0)
    assert value["encoding"] == "arrow" and read_arrow(value["_payload"]).num_rows == 3


@pytest.mark.skipif(pl is None, reason="polars not installed")
def test_polars_frames_round_trip_through_arrow(worker, project):
    df = pl.DataFrame({"a": [1, 2, 3], "s": ["x", "y", "z"]})
    final, _ = worker.request("put_value", payload=arrow_bytes(df.to_arrow()), key="load",
                              encoding="arrow", frame_kind="polars")
    assert final["type"] == "ok", final
    f = project.block("transformers/t.py", TRANSFORMER_HDR + dedent("""
        import polars as pl

        @transformer
        def t(df, *args, **kwargs):
            assert isinstance(df, pl.DataFrame), type(df)
            return df.with_columns((pl.col('a') * 2).alias('b'))
    """))
    final, msgs = worker.run_block(block_uuid="t", block_type="transformer", file_path=f,
                                   project_path=project.path, upstream_keys=["load"])
    assert final["status"] == "ok", final
    (o,) = outputs_of(msgs)
    assert o["mage_type"] == "polars_dataframe" and o["python_type"] == "polars.DataFrame"
    assert pl.from_arrow(read_arrow(o["_payload"]))["b"].to_list() == [2, 4, 6]
    # the same stored arrow value can be read as pandas by a pandas block (frame_kind on run_block)
    f2 = project.block("transformers/t2.py", TRANSFORMER_HDR + dedent("""
        import pandas as pd

        @transformer
        def t(df):
            return type(df).__module__.split('.')[0]
    """))
    final, msgs = worker.run_block(block_uuid="t2", block_type="transformer", file_path=f2,
                                   project_path=project.path, upstream_keys=["load"], frame_kind="pandas")
    assert json_of(outputs_of(msgs)[0]) == "pandas"


def test_frames_go_to_parquet_files_the_worker_writes_in_the_background(file_worker, project, tmp_path):
    worker = file_worker
    import pyarrow.parquet as pq

    f = project.block("data_loaders/l.py", LOADER_HDR + dedent("""
        import pandas as pd

        @data_loader
        def load(*args, **kwargs):
            df = pd.DataFrame({"a": [1, 2, 3], "s": ["x", "y", None]}).set_index("s")
            return df, {"n": 3}
    """))
    out_dir = str(tmp_path / "staged")
    final, msgs = worker.run_block(block_uuid="l", block_type="data_loader", file_path=f,
                                   project_path=project.path, output_dir=out_dir)
    assert final["status"] == "ok", final
    first_id = final["id"]
    frame, meta = final["outputs"]
    assert frame["encoding"] == "parquet" and frame["mage_type"] == "dataframe"
    assert frame["path"] == os.path.join(out_dir, "output_0", "data.parquet")
    # the JSON value is still sent inline; the frame is not sent at all
    (inline,) = outputs_of(msgs)
    assert inline["index"] == 1 and json_of(inline) == {"n": 3}
    # a downstream block runs while (or after) the file is written, on the same frame
    g = project.block("transformers/t.py", TRANSFORMER_HDR + dedent("""
        @transformer
        def t(outputs, *args, **kwargs):
            df, meta = outputs  # a parent with two outputs passes both
            return int(df["a"].sum()) * meta["n"]
    """))
    final, msgs = worker.run_block(block_uuid="t", block_type="transformer", file_path=g,
                                   project_path=project.path, upstream_keys=["l"], output_dir=str(tmp_path / "t"))
    assert final["status"] == "ok", final
    assert json_of(outputs_of(msgs)[0]) == 18
    stored = worker.wait_stored()
    assert stored["id"] == first_id and stored["index"] == 0
    assert stored["path"] == frame["path"] and "error" not in stored, stored
    assert stored["bytes"] == os.path.getsize(frame["path"])
    # what the file holds comes with it
    assert stored["rows"] == 3 and stored["columns"] == 2 and stored["index_columns"] == ["s"]
    assert [it["name"] for it in stored["schema"]] == ["s", "a"] and stored["schema"][1]["type"] == "int64"
    back = pq.read_table(frame["path"]).to_pandas()  # pandas metadata restores the index
    assert back.index.name == "s" and back["a"].tolist() == [1, 2, 3]
    assert not os.path.exists(frame["path"] + ".tmp")
    # a block whose tests fail keeps its frames inline: nothing is written for it
    h = project.block("data_loaders/h.py", LOADER_HDR + dedent("""
        import pandas as pd

        @data_loader
        def load(*args, **kwargs):
            return pd.DataFrame({"a": [1]})

        @test
        def never(df):
            assert False
    """))
    final, msgs = worker.run_block(block_uuid="h", block_type="data_loader", file_path=h, project_path=project.path,
                                   output_dir=str(tmp_path / "h"), run_tests=True)
    assert final["status"] == "error" and outputs_of(msgs)[0]["encoding"] == "arrow"
    assert not (tmp_path / "h").exists()


def test_a_detached_table_shares_no_memory_with_its_frame(codec):
    """The thread writer copies a pandas frame's table first: the next block may change the frame
    in place while the file is written, and pyarrow shares numeric columns with pandas."""
    df = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [1, 2, 3]})
    meta, table, payload = codec.encode_for_file(df)
    assert meta["encoding"] == "parquet" and payload == b"" and codec.borrows_memory(df)
    table = codec.detach(table)
    df.loc[0, "a"] = 99.0
    df["b"] += 10
    df.iloc[1, 0] = -1.0
    assert table.column("a").to_pylist() == [1.0, 2.0, 3.0]
    assert table.column("b").to_pylist() == [1, 2, 3]
    assert not codec.borrows_memory(pa.table({"a": [1]}))
    # other values are encoded as usual
    meta, table, payload = codec.encode_for_file({"k": 1})
    assert table is None and meta["encoding"] == "json" and json.loads(payload) == {"k": 1}


def test_a_frame_changed_in_place_by_the_next_block_is_written_as_returned(file_worker, project, tmp_path):
    """The file is written while the next block already runs on the same frame and overwrites
    it in place: the file must hold what the first block returned (a child process sees the
    worker's memory as it was at the fork; the thread writer works on a copy)."""
    import pyarrow.parquet as pq

    f = project.block("data_loaders/l.py", LOADER_HDR + dedent("""
        import numpy as np
        import pandas as pd

        @data_loader
        def load(*args, **kwargs):
            return pd.DataFrame({"x": np.arange(2_000_000, dtype="float64"), "y": np.ones(2_000_000)})
    """))
    g = project.block("transformers/t.py", TRANSFORMER_HDR + dedent("""
        @transformer
        def t(df, *args, **kwargs):
            df.iloc[:, 0] = -1.0
            df.iloc[:, 1] = -1.0
            return float(df["x"].sum())
    """))
    final, _ = file_worker.run_block(block_uuid="l", block_type="data_loader", file_path=f,
                                     project_path=project.path, output_dir=str(tmp_path / "l"))
    assert final["status"] == "ok", final
    path = final["outputs"][0]["path"]
    final, msgs = file_worker.run_block(block_uuid="t", block_type="transformer", file_path=g,
                                        project_path=project.path, upstream_keys=["l"], output_dir=str(tmp_path / "t"))
    assert final["status"] == "ok", final
    assert json_of(outputs_of(msgs)[0]) == -2_000_000.0
    stored = file_worker.wait_stored()
    assert "error" not in stored, stored
    table = pq.read_table(path)
    assert pc.sum(table["x"]).as_py() == 1999999000000 and pc.sum(table["y"]).as_py() == 2_000_000


@pytest.mark.skipif(pl is None, reason="polars not installed")
def test_a_polars_frame_is_written_to_its_file(file_worker, project, tmp_path):
    """A polars frame (its Rust thread pool running in the worker) is written like a pandas one,
    and the writer says nothing on the block's streams."""
    import pyarrow.parquet as pq

    f = project.block("data_loaders/l.py", LOADER_HDR + dedent("""
        import polars as pl

        @data_loader
        def load(*args, **kwargs):
            return pl.DataFrame({"a": [1, 2, 3]}).lazy().select(pl.col("a") * 2).collect()
    """))
    final, msgs = file_worker.run_block(block_uuid="l", block_type="data_loader", file_path=f,
                                        project_path=project.path, output_dir=str(tmp_path / "l"))
    assert final["status"] == "ok", final
    assert final["outputs"][0]["mage_type"] == "polars_dataframe"
    stored = file_worker.wait_stored()
    assert "error" not in stored, stored
    assert pq.read_table(stored["path"])["a"].to_pylist() == [2, 4, 6]
    assert [m for m in msgs if m["type"] == "stream"] == []
    final, msgs = file_worker.request("ping")
    assert final["type"] == "ok"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the forked writer is used on Linux")
def test_a_writer_process_dies_with_its_worker(project, tmp_path):
    """A worker that is killed leaves no writer process behind. The file here is a FIFO
    nobody reads, so the writer blocks in open() until it is killed with the worker."""
    worker = Worker(env={"WAND_WORKER_WRITER": "fork"})
    children = []
    try:
        f = project.block("data_loaders/l.py", LOADER_HDR + dedent("""
            import pandas as pd

            @data_loader
            def load(*args, **kwargs):
                return pd.DataFrame({"a": [1, 2, 3]})
        """))
        out = tmp_path / "l"
        (out / "output_0").mkdir(parents=True)
        os.mkfifo(out / "output_0" / "data.parquet.tmp")
        final, _ = worker.run_block(block_uuid="l", block_type="data_loader", file_path=f,
                                    project_path=project.path, output_dir=str(out))
        assert final["status"] == "ok", final
        deadline = time.time() + 10
        while not children and time.time() < deadline:
            children = child_pids(worker.proc.pid)
            time.sleep(0.02)
        assert len(children) == 1, children
        worker.proc.kill()
        worker.proc.wait()
        deadline = time.time() + 10
        while is_running(children[0]) and time.time() < deadline:
            time.sleep(0.02)
        assert not is_running(children[0])
    finally:
        for pid in children:  # a writer left behind (the test failed) holds the worker's stderr
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        worker.close()


def child_pids(pid):
    pids = []
    for task in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/children" % (pid, task)) as f:
                pids += [int(it) for it in f.read().split()]
        except FileNotFoundError:  # a thread that has just ended
            pass
    return pids


def is_running(pid):
    """Alive and not a zombie (a container's init may never reap it)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_frame_that_cannot_be_written_is_reported(file_worker, project, tmp_path):
    worker = file_worker
    f = project.block("data_loaders/l.py", LOADER_HDR + dedent("""
        import pandas as pd

        @data_loader
        def load(*args, **kwargs):
            return pd.DataFrame({"a": [1, 2]})
    """))
    blocker = tmp_path / "staged"
    blocker.write_text("a file where the output folder should be")
    final, _ = worker.run_block(block_uuid="l", block_type="data_loader", file_path=f,
                                project_path=project.path, output_dir=str(blocker))
    assert final["status"] == "ok" and final["outputs"][0]["encoding"] == "parquet"
    stored = worker.wait_stored()
    assert stored["index"] == 0 and "cannot write" in stored["error"], stored
    # the worker goes on serving
    final, _ = worker.request("ping")
    assert final["type"] == "ok"


def test_a_frame_arrow_cannot_convert_stays_in_the_worker(file_worker, project, tmp_path):
    """A frame with a mixed-type object column is not written: the forked writer, which converts
    it, says so in `output_stored`; the thread writer's worker converts it first and sends it as
    an opaque value. Either way the frame stays usable downstream in the worker."""
    f = project.block("data_loaders/l.py", LOADER_HDR + dedent("""
        import pandas as pd

        @data_loader
        def load(*args, **kwargs):
            return pd.DataFrame({"mixed": [1, "two", 3.0]})
    """))
    final, msgs = file_worker.run_block(block_uuid="l", block_type="data_loader", file_path=f,
                                        project_path=project.path, output_dir=str(tmp_path / "l"))
    assert final["status"] == "ok", final
    (entry,) = final["outputs"]
    if entry["encoding"] == "parquet":
        stored = file_worker.wait_stored()
        assert "bytes" not in stored and "error" not in stored, stored
        assert "ArrowInvalid" in stored["conversion_error"] or "ArrowTypeError" in stored["conversion_error"], stored
        assert "two" in stored["repr"]
        assert not os.path.exists(entry["path"])
    else:
        assert entry["encoding"] == "opaque" and "two" in entry["repr"] and entry["conversion_error"]
    g = project.block("transformers/t.py", TRANSFORMER_HDR + dedent("""
        @transformer
        def t(df, *args, **kwargs):
            return df["mixed"].tolist()[1]
    """))
    final, msgs = file_worker.run_block(block_uuid="t", block_type="transformer", file_path=g,
                                        project_path=project.path, upstream_keys=["l"])
    assert final["status"] == "ok" and json_of(outputs_of(msgs)[0]) == "two", final


def test_json_and_opaque_values(worker, project):
    f = project.block("custom/c.py", dedent("""
        import datetime
        import numpy as np

        class Thing:
            def __repr__(self):
                return 'Thing()'

        @custom
        def c():
            return ({'d': datetime.date(2024, 1, 2), 'n': np.int64(3), 'f': float('nan'), 1: 'k'},
                    Thing())
    """))
    final, msgs = worker.run_block(block_uuid="c", file_path=f, project_path=project.path)
    assert final["status"] == "ok", final
    o0, o1 = outputs_of(msgs)
    assert json_of(o0) == {"d": "2024-01-02", "n": 3, "f": None, "1": "k"}
    assert o1["encoding"] == "opaque" and o1["repr"] == "Thing()" and o1["_payload"] == b""
    assert o1["mage_type"] == "custom_object"
    # opaque values stay usable downstream inside the worker
    f2 = project.block("custom/d.py", dedent("""
        @custom
        def d(c):
            return repr(c[1])
    """))
    final, msgs = worker.run_block(block_uuid="d", file_path=f2, project_path=project.path,
                                   upstream_keys=["c"])
    assert json_of(outputs_of(msgs)[0]) == "Thing()"


# ------------------------------------------------------------------ streams
def test_stream_events_arrive_before_block_result(worker, project):
    f = project.block("custom/c.py", dedent("""
        import sys, os
        print('at import')

        @custom
        def c():
            print('line 1')
            sys.stderr.write('err line\\n')
            print('partial', end='')
            rc = os.system('echo from a child process')
            os.write(1, b'raw fd 1 write\\n')
            return 7 if rc == 0 else rc
    """))
    final, msgs = worker.run_block(block_uuid="c", file_path=f, project_path=project.path)
    assert final["status"] == "ok", final
    types = [m["type"] for m in msgs]
    assert types.index("block_result") > max(i for i, t in enumerate(types) if t == "stream")
    streams = [(m["name"], m["text"]) for m in msgs if m["type"] == "stream"]
    stdout = "".join(t for n, t in streams if n == "stdout")
    assert stdout == "at import\nline 1\npartial"
    assert ("stderr", "err line\n") in streams
    assert json_of(outputs_of(msgs)[0]) == 7
    # C-level writes to fd 1 go to the worker's stderr, never into the protocol
    deadline = time.time() + 5
    while not ("raw fd 1 write" in worker.stderr and "from a child process" in worker.stderr) and time.time() < deadline:
        time.sleep(0.05)
    assert "raw fd 1 write" in worker.stderr and "from a child process" in worker.stderr


# ------------------------------------------------------------------ scratch
def test_scratch_exec_last_expression(worker, project):
    put_json(worker, "my_block", {"x": 1})
    final, msgs = worker.request("exec", code="y = my_block['x'] + 1\nprint('y is', y)\ny * 10",
                                 namespace="scratch")
    assert final["type"] == "exec_result" and final["status"] == "ok", final
    assert final["execute_result"]["data"]["text/plain"] == "20"
    assert [m["text"] for m in msgs if m["type"] == "stream"] == ["y is 2\n"]
    final, _ = worker.request("exec", code="y", namespace="scratch")  # persistent namespace
    assert final["execute_result"]["data"]["text/plain"] == "2"
    final, _ = worker.request("exec", code="import pandas as pd\npd.DataFrame({'a': [1]})")
    assert "text/html" in final["execute_result"]["data"]
    final, _ = worker.request("exec", code="z = 1")
    assert final["execute_result"] is None
    final, _ = worker.request("exec", code="\n\nundefined_name")
    assert final["status"] == "error" and final["error"]["ename"] == "NameError"
    assert any("line 3" in line for line in final["error"]["traceback"])
    # block outputs become scratch variables
    f = project.block("custom/blk.py", "@custom\ndef c():\n    return 5\n")
    worker.run_block(block_uuid="blk", file_path=f, project_path=project.path)
    final, _ = worker.request("exec", code="blk + 1")
    assert final["execute_result"]["data"]["text/plain"] == "6"
    final, _ = worker.request("complete", code="x = my_bl", cursor_pos=9)
    assert final["type"] == "complete_reply" and "my_block" in final["matches"]
    assert final["cursor_start"] == 4 and final["cursor_end"] == 9
    final, _ = worker.request("complete", code="my_block.ke", cursor_pos=11)
    assert "my_block.keys" in final["matches"]


# -------------------------------------------------------------------- input
def test_input_round_trip(worker, project):
    f = project.block("custom/c.py", dedent("""
        @custom
        def c():
            name = input('Name? ')
            import sys
            line = sys.stdin.readline()
            import getpass
            secret = getpass.getpass('Secret: ')
            return [name, line, secret]
    """))
    prompts = []

    def answer(msg):
        prompts.append((msg["prompt"], msg["password"]))
        return ["Ada", "second", "s3cr3t"][len(prompts) - 1]

    rid = worker.new_id()
    worker.send({"type": "run_block", "id": rid, "block_uuid": "c", "block_type": "custom",
                 "file_path": f, "project_path": project.path, "upstream_keys": []})
    final, msgs = worker.collect(rid, on_input=answer)
    assert final["status"] == "ok", final
    assert prompts == [("Name? ", False), ("", False), ("Secret: ", True)]
    assert [json_of(o) for o in outputs_of(msgs)] == ["Ada", "second\n", "s3cr3t"]
    final, _ = worker.request("exec", code="input('again: ')", on_input=lambda m: "scratch")
    assert final["execute_result"]["data"]["text/plain"] == "'scratch'"


# ---------------------------------------------------------------- interrupt
def test_sigint_interrupts_running_block(worker, project):
    f = project.block("custom/loop.py", dedent("""
        @custom
        def c():
            print('looping')
            while True:
                pass
    """))
    rid = worker.new_id()
    worker.send({"type": "run_block", "id": rid, "block_uuid": "loop", "block_type": "custom",
                 "file_path": f, "project_path": project.path, "upstream_keys": []})
    msg = worker.recv()
    assert msg["type"] == "stream" and msg["text"] == "looping\n"
    time.sleep(0.2)
    t0 = time.time()
    os.kill(worker.proc.pid, signal.SIGINT)
    final, _ = worker.collect(rid, timeout=5)
    assert time.time() - t0 < 1.0
    assert final["status"] == "error" and final["error"]["ename"] == "KeyboardInterrupt"
    assert final["error"]["lineno"] in (line_of(f, "while True"), line_of(f, "pass"))
    # idle SIGINT is ignored and the worker keeps serving
    os.kill(worker.proc.pid, signal.SIGINT)
    time.sleep(0.2)
    final, _ = worker.request("ping")
    assert final["type"] == "ok"
    f2 = project.block("custom/ok.py", "@custom\ndef c():\n    return 1\n")
    final, _ = worker.run_block(block_uuid="ok", file_path=f2, project_path=project.path)
    assert final["status"] == "ok"
    # the out-of-band `interrupt` message does the same as SIGINT
    worker.send({"type": "run_block", "id": 999, "block_uuid": "loop", "block_type": "custom",
                 "file_path": f, "project_path": project.path, "upstream_keys": []})
    assert worker.recv()["type"] == "stream"
    worker.send({"type": "interrupt"})
    final, _ = worker.collect(999, timeout=5)
    assert final["error"]["ename"] == "KeyboardInterrupt"


def test_os_exit_kills_worker_and_fresh_worker_works(project):
    w = Worker()
    try:
        f = project.block("custom/die.py", "import os\n@custom\ndef c():\n    os._exit(3)\n")
        rid = w.new_id()
        w.send({"type": "run_block", "id": rid, "block_uuid": "die", "block_type": "custom",
                "file_path": f, "project_path": project.path, "upstream_keys": []})
        assert w.proc.wait(timeout=10) == 3
        with pytest.raises(EOFError):
            w.recv(timeout=5)
    finally:
        w.close()
    w2 = Worker()
    try:
        f2 = project.block("custom/ok.py", "@custom\ndef c():\n    return 'alive'\n")
        final, msgs = w2.run_block(block_uuid="ok", file_path=f2, project_path=project.path)
        assert json_of(outputs_of(msgs)[0]) == "alive"
    finally:
        w2.close()
    assert w2.proc.returncode == 0


def test_sys_exit_in_block_is_an_error_not_an_exit(worker, project):
    f = project.block("custom/c.py", "import sys\n@custom\ndef c():\n    sys.exit(4)\n")
    final, _ = worker.run_block(block_uuid="c", file_path=f, project_path=project.path)
    assert final["status"] == "error" and final["error"]["ename"] == "SystemExit"
    assert worker.request("ping")[0]["type"] == "ok"


# ------------------------------------------------------------ malformed input
def test_malformed_frames(worker):
    bad = b"{not json"
    worker.send_raw(struct.pack(">I", len(bad)) + bad + struct.pack(">Q", 0))
    msg = worker.recv()
    assert msg["type"] == "error" and "malformed" in msg["message"]
    worker.send({"type": "no_such_thing", "id": 41})
    msg = worker.recv()
    assert msg == {"type": "error", "id": 41, "message": "unknown message type 'no_such_thing'",
                   "_payload": b""}
    worker.send({"id": 42})
    msg = worker.recv()
    assert msg["type"] == "error" and msg["id"] == 42
    assert worker.request("ping")[0]["type"] == "ok"
    # broken framing: an absurd header length cannot be re-synchronised
    worker.send_raw(struct.pack(">I", 0xFFFFFFFF) + b"garbage")
    msg = worker.recv()
    assert msg["type"] == "error" and msg.get("fatal") is True
    assert worker.proc.wait(timeout=10) == 2
    assert "broken framing" in worker.stderr


def test_truncated_frame_at_eof_exits(worker):
    worker.send_raw(struct.pack(">I", 100) + b"{")
    worker.proc.stdin.close()
    assert worker.proc.wait(timeout=10) == 2


def test_clean_eof_exits_zero(worker):
    worker.proc.stdin.close()
    assert worker.proc.wait(timeout=10) == 0


# ------------------------------------------------------------------ project
def test_project_path_cwd_and_utils_reload(worker, project):
    project.block("utils/helpers.py", "def value():\n    return 1\n")
    f = project.block("custom/c.py", dedent("""
        import os
        from proj.utils.helpers import value
        from mage_ai.settings.repo import get_repo_path

        @custom
        def c():
            return [value(), os.getcwd(), get_repo_path()]
    """))
    final, msgs = worker.run_block(block_uuid="c", file_path=f, project_path=project.path)
    assert final["status"] == "ok", final
    parent = os.path.dirname(project.path)
    assert [json_of(o) for o in outputs_of(msgs)] == [1, parent, project.path]
    time.sleep(0.01)
    project.block("utils/helpers.py", "def value():\n    return 2  # changed\n")
    final, msgs = worker.run_block(block_uuid="c", file_path=f, project_path=project.path)
    assert json_of(outputs_of(msgs)[0]) == 2
