"""Value codec: Python values <-> (meta, payload) (see PROTOCOL.md, "Values")."""

import datetime
import json
import math
import os

import pyarrow as pa

try:
    import pandas as pd
except ImportError:  # pragma: no cover - pandas is a hard requirement in practice
    pd = None

try:
    import numpy as np
except ImportError:  # pragma: no cover
    np = None

_polars = None
_polars_checked = False


def polars():
    """The polars module, or None when it is not installed (imported lazily)."""
    global _polars, _polars_checked
    if not _polars_checked:
        _polars_checked = True
        try:
            import polars as pl

            _polars = pl
        except ImportError:
            _polars = None
    return _polars


def _is_polars(value, cls_name):
    mod = type(value).__module__ or ""
    if not mod.startswith("polars"):
        return False
    pl = polars()
    return pl is not None and isinstance(value, getattr(pl, cls_name))


def python_type(value):
    t = type(value)
    mod = t.__module__
    if mod == "builtins":
        return t.__qualname__
    # report the public module (pandas.core.frame.DataFrame -> pandas.DataFrame)
    top = mod.split(".")[0]
    return "%s.%s" % (top, t.__qualname__)


class _NotJson(Exception):
    pass


def _to_json(value, depth=0):
    if depth > 200:
        raise _NotJson()
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        if pd is not None and value is pd.NaT:
            return None
        return value.isoformat()
    if np is not None and isinstance(value, np.generic):
        if isinstance(value, np.datetime64):
            if np.isnat(value):
                return None
            return str(value)
        if isinstance(value, (np.bool_, np.integer, np.floating, np.str_)):
            return _to_json(value.item(), depth + 1)
        raise _NotJson()
    if isinstance(value, (list, tuple)):
        return [_to_json(v, depth + 1) for v in value]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if isinstance(k, str):
                key = k
            elif k is None or isinstance(k, (bool, int, float)):
                key = json.dumps(k)  # same rule as json.dumps: 1 -> "1", None -> "null"
            else:
                raise _NotJson()
            out[key] = _to_json(v, depth + 1)
        return out
    raise _NotJson()


def _schema(table):
    return [{"name": f.name, "type": str(f.type)} for f in table.schema]


def _write_stream(sink, table):
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)


def _ipc_stream(table):
    """The table as an Arrow IPC stream, in a pyarrow Buffer (sent without a copy into bytes).

    The size is measured first and the stream written into a buffer of exactly that size: a
    growing BufferOutputStream re-copies large frames several times (10x slower). The copy
    runs on up to four threads (half the time on two cores). The buffer comes from the C
    allocator, not pyarrow's default pool: measured on the taxi pipeline, a 200 MB buffer taken
    from mimalloc made the next block, which allocates with malloc, run up to twice as slow."""
    mock = pa.MockOutputStream()
    _write_stream(mock, table)
    buf = pa.allocate_buffer(mock.size(), memory_pool=pa.system_memory_pool())
    writer = pa.FixedSizeBufferWriter(buf)
    writer.set_memcopy_threads(max(1, min(4, os.cpu_count() or 1)))
    _write_stream(writer, table)
    return buf


def _pandas_frame_to_arrow(df):
    """Return (table, index_columns). A RangeIndex 0..n-1 is dropped; any other index
    (named, non-default range, datetime, MultiIndex, ...) becomes leading columns and the
    pandas metadata in the schema restores it when read back with pandas."""
    idx = df.index
    default_index = (
        isinstance(idx, pd.RangeIndex)
        and idx.start == 0
        and idx.step == 1
        and idx.name is None
    )
    if default_index:
        return pa.Table.from_pandas(df, preserve_index=False), []
    table = pa.Table.from_pandas(df, preserve_index=True)
    n_index = idx.nlevels
    names = table.schema.names
    index_cols = names[len(names) - n_index:]
    # move index columns to the front so a reader sees them first
    order = index_cols + names[: len(names) - n_index]
    table = table.select(order)
    return table, list(index_cols)


def _frame_table(value, meta):
    """The Arrow table of a frame value (pandas, polars, pyarrow), with its `mage_type` put in
    `meta`; None for any other value. Raises when Arrow cannot convert the frame."""
    if pd is not None and isinstance(value, pd.DataFrame):
        table, index_cols = _pandas_frame_to_arrow(value)
        meta["mage_type"] = "dataframe"
        meta["index_columns"] = index_cols
        return table
    if pd is not None and isinstance(value, pd.Series):
        name = value.name if value.name is not None else "0"
        table, index_cols = _pandas_frame_to_arrow(value.to_frame(name=str(name)))
        meta["mage_type"] = "series_pandas"
        meta["index_columns"] = index_cols
        return table
    if _is_polars(value, "DataFrame"):
        meta["mage_type"] = "polars_dataframe"
        return value.to_arrow()
    if _is_polars(value, "Series"):
        meta["mage_type"] = "polars_series"
        return value.to_frame().to_arrow()
    if isinstance(value, pa.Table):
        meta["mage_type"] = "dataframe"
        return value
    if isinstance(value, pa.RecordBatch):
        meta["mage_type"] = "dataframe"
        return pa.Table.from_batches([value])
    return None


def _not_convertible(meta, value, error):
    """A frame Arrow cannot convert (e.g. a mixed-type object column) stays in the worker."""
    meta.update(
        {
            "encoding": "opaque",
            "mage_type": "custom_object",
            "repr": _safe_repr(value),
            "conversion_error": "%s: %s" % (type(error).__name__, error),
        }
    )
    return meta


def _describe(meta, table, encoding):
    meta.update(
        {
            "encoding": encoding,
            "rows": table.num_rows,
            "columns": table.num_columns,
            "schema": _schema(table),
        }
    )


def _encode_plain(meta, value):
    """(meta, payload) of a value that is not a frame: JSON, or opaque."""
    try:
        doc = _to_json(value)
    except _NotJson:
        meta.update({"encoding": "opaque", "mage_type": "custom_object", "repr": _safe_repr(value)})
        return meta, b""
    meta["encoding"] = "json"
    meta["mage_type"] = None
    return meta, json.dumps(doc, ensure_ascii=False, allow_nan=False).encode("utf-8")


def encode(value):
    """Return (meta, payload). meta always has 'encoding' and 'python_type'.

    'mage_type' tells which Mage variable type (spec 7.2) the value corresponds to.
    """
    meta = {"python_type": python_type(value)}
    try:
        table = _frame_table(value, meta)
    except Exception as e:
        return _not_convertible(meta, value, e), b""
    if table is None:
        return _encode_plain(meta, value)
    _describe(meta, table, "arrow")
    return meta, _ipc_stream(table)


def encode_for_file(value, defer_pandas=False):
    """Return (meta, frame, payload) for an output the worker writes to a Parquet file itself
    (PROTOCOL.md 6.6.6): a frame comes back with encoding "parquet" and an empty payload; any
    other value as `encode` gives it, with frame None.

    `frame` is the Arrow table, converted now: a pandas frame that Arrow cannot convert is an
    opaque value here. With `defer_pandas` a pandas value is returned as it is, for a writer
    that converts it later (`table_for_file`) on a snapshot of it. A pandas frame's table shares
    numeric columns with the frame (`borrows_memory`): whoever writes it later must see the
    frame as it is now (`files.OutputFiles`)."""
    meta = {"python_type": python_type(value)}
    if defer_pandas and borrows_memory(value):
        meta["encoding"] = "parquet"
        meta["mage_type"] = "series_pandas" if isinstance(value, pd.Series) else "dataframe"
        return meta, value, b""
    try:
        table = _frame_table(value, meta)
    except Exception as e:
        return _not_convertible(meta, value, e), None, b""
    if table is None:
        meta, payload = _encode_plain(meta, value)
        return meta, None, payload
    meta["encoding"] = "parquet"
    meta.pop("index_columns", None)  # told with the file (`table_for_file`)
    return meta, table, b""


def table_for_file(frame):
    """(table, shape) for a frame `encode_for_file` returned: the Arrow table to write and what
    the file holds (`rows`, `columns`, `schema`, `index_columns`: the columns that restore a
    pandas index). Raises when Arrow cannot convert a pandas value."""
    if isinstance(frame, pa.Table):  # converted by `encode_for_file`: pandas' metadata tells
        table = frame
        index_columns = [it for it in (table.schema.pandas_metadata or {}).get("index_columns", []) if isinstance(it, str)]
    else:
        meta = {}
        table = _frame_table(frame, meta)
        index_columns = meta.get("index_columns", [])
    shape = {"rows": table.num_rows, "columns": table.num_columns, "schema": _schema(table), "index_columns": index_columns}
    return table, shape


def not_convertible(frame, error):
    """What a writer reports for a frame Arrow could not convert: it stays in the worker."""
    return {"conversion_error": "%s: %s" % (type(error).__name__, error), "repr": _safe_repr(frame)}


def borrows_memory(value):
    """True when the Arrow table of `value` shares memory that user code can change in place:
    pandas frames and series (polars and Arrow data are immutable)."""
    return pd is not None and isinstance(value, (pd.DataFrame, pd.Series))


def detach(table):
    """A copy of `table` that shares no memory with anything else."""
    return pa.ipc.open_stream(_ipc_stream(table)).read_all()


def write_parquet(table, path):
    """Writes `table` to `path` through a temporary file. Returns the file's size.

    zstd level 1: about the size of the default level for a quarter less CPU. A 128 KiB limit
    on dictionary pages (pyarrow's default is 1 MiB): a column with more distinct values than
    that falls back to plain encoding sooner, with less work wasted on a dictionary it drops;
    on the taxi frames (1.3M rows, 20 columns) writing took 17% less time, and the files came
    out 4% smaller."""
    import pyarrow.parquet as pq

    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    try:
        pq.write_table(table, tmp, compression="zstd", compression_level=1, dictionary_pagesize_limit=128 * 1024)
    except TypeError as e:  # a pyarrow older than the option (added in pyarrow 8)
        if "dictionary_pagesize_limit" not in str(e):
            raise
        pq.write_table(table, tmp, compression="zstd", compression_level=1)
    os.replace(tmp, path)
    return os.path.getsize(path)


def _safe_repr(value, limit=2000):
    try:
        r = repr(value)
    except Exception as e:
        r = "<unrepresentable %s: %s>" % (python_type(value), e)
    if len(r) > limit:
        r = r[:limit] + "..."
    return r


def decode_arrow(payload):
    reader = pa.ipc.open_stream(pa.py_buffer(payload))
    return reader.read_all()


def table_to_frame(table, frame_kind="pandas", as_series=False):
    if frame_kind == "polars":
        pl = polars()
        if pl is None:
            raise ValueError("frame_kind 'polars' requested but polars is not installed")
        df = pl.from_arrow(table)
        if as_series and isinstance(df, pl.DataFrame) and df.width == 1:
            return df.to_series(0)
        return df
    if frame_kind == "arrow":
        return table
    if frame_kind not in (None, "pandas"):
        raise ValueError("unknown frame_kind %r (expected pandas, polars or arrow)" % (frame_kind,))
    df = table.to_pandas()
    if as_series and df.shape[1] == 1:
        return df.iloc[:, 0]
    return df


def decode(encoding, payload):
    """Decode a payload into either a value or an ArrowValue (frame kind chosen later)."""
    if encoding == "json":
        return json.loads(payload.decode("utf-8")) if payload else None
    if encoding == "arrow":
        return decode_arrow(payload)
    raise ValueError("unknown encoding %r (expected arrow or json)" % (encoding,))


def html_repr(value):
    fn = getattr(value, "_repr_html_", None)
    if fn is None:
        return None
    try:
        out = fn()
    except Exception:
        return None
    return out if isinstance(out, str) else None


__all__ = ["encode", "encode_for_file", "table_for_file", "not_convertible", "borrows_memory", "detach", "write_parquet", "decode", "table_to_frame", "html_repr", "python_type", "polars"]
