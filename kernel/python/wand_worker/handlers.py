"""Request handlers (one per message type).

`codec` (pandas, pyarrow) is imported where it is used: the worker imports it in the background
at start, and a block's own code should not wait for pyarrow (see `Worker.warm_up`)."""

from wand_worker.store import StoredArrow


def _frame_kind(header, default=None):
    kind = header.get("frame_kind") or default
    if kind not in (None, "pandas", "polars", "arrow"):
        raise ValueError("unknown frame_kind %r (expected pandas, polars or arrow)" % (kind,))
    return kind


def h_ping(worker, header, payload):
    worker.reply({"type": "ok", "id": header["id"]})


def h_put_value(worker, header, payload):
    from wand_worker import codec

    rid = header["id"]
    key = header.get("key")
    if not isinstance(key, str) or not key:
        worker.reply({"type": "error", "id": rid, "message": "put_value needs a non-empty string 'key'"})
        return
    index = header.get("index", 0)
    count = header.get("count", 1)
    encoding = header.get("encoding")
    try:
        if count == 0:
            value = None
        elif encoding == "arrow":
            if _frame_kind(header) == "polars" and codec.polars() is None:
                raise ValueError("frame_kind 'polars' requested but polars is not installed")
            value = StoredArrow(
                codec.decode_arrow(payload), _frame_kind(header, "pandas"), bool(header.get("as_series"))
            )
        else:
            value = codec.decode(encoding, payload)
        worker.store.put(key, index, count, value)
    except Exception as e:
        worker.reply({"type": "error", "id": rid, "message": "put_value %r failed: %s: %s" % (key, type(e).__name__, e)})
        return
    worker.reply({"type": "ok", "id": rid})


def h_get_value(worker, header, payload):
    from wand_worker import codec

    rid = header["id"]
    key = header.get("key")
    index = header.get("index", 0)
    try:
        value = worker.store.output(key, index)
    except KeyError as e:
        worker.reply({"type": "error", "id": rid, "message": str(e.args[0] if e.args else e)})
        return
    meta, data = codec.encode(value)
    meta.update({"type": "value", "id": rid, "key": key, "index": index,
                 "count": len(worker.store.entries.get(key, []))})
    worker.reply(meta, data)


def h_delete_values(worker, header, payload):
    keys = header.get("keys")
    worker.store.delete(keys)
    worker.reply({"type": "ok", "id": header["id"]})


def h_end_run(worker, header, payload):
    worker.contexts.pop(header.get("run_id"), None)
    worker.reply({"type": "ok", "id": header["id"]})


def h_run_block(worker, header, payload):
    from wand_worker.runner import run_block

    run_block(worker, header)


def h_exec(worker, header, payload):
    from wand_worker.scratch import run_exec

    run_exec(worker, header)


def h_complete(worker, header, payload):
    from wand_worker.scratch import run_complete

    run_complete(worker, header)


HANDLERS = {
    "ping": h_ping,
    "put_value": h_put_value,
    "get_value": h_get_value,
    "delete_values": h_delete_values,
    "end_run": h_end_run,
    "run_block": h_run_block,
    "exec": h_exec,
    "complete": h_complete,
}
