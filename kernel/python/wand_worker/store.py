"""In-memory value store: key (block uuid) -> list of outputs."""

UNSET = object()


class StoredArrow:
    """An Arrow table received from the engine; materialised per frame kind on use."""

    def __init__(self, table, default_kind="pandas", as_series=False):
        self.table = table
        self.default_kind = default_kind or "pandas"
        self.as_series = as_series
        self._cache = {}

    def get(self, frame_kind=None):
        kind = frame_kind or self.default_kind
        if kind not in self._cache:
            from wand_worker import codec

            self._cache[kind] = codec.table_to_frame(self.table, kind, self.as_series)
        return self._cache[kind]


class Store:
    def __init__(self):
        self.entries = {}
        self.versions = {}
        self._counter = 0

    def _bump(self, key):
        self._counter += 1
        self.versions[key] = self._counter

    def put(self, key, index, count, value):
        if count is None:
            count = 1
        if index == 0 or key not in self.entries:
            if index != 0:
                raise ValueError("put_value for a new key must start with index 0")
            self.entries[key] = [UNSET] * count
        slots = self.entries[key]
        if count == 0:
            self.entries[key] = []
        elif not (0 <= index < len(slots)):
            raise ValueError("index %d out of range for key %r with %d outputs" % (index, key, len(slots)))
        else:
            slots[index] = value
        self._bump(key)

    def set_outputs(self, key, outputs):
        self.entries[key] = list(outputs)
        self._bump(key)

    def delete(self, keys=None):
        if keys is None:
            keys = list(self.entries)
        for k in keys:
            self.entries.pop(k, None)
            self._bump(k)

    def has(self, key):
        return key in self.entries

    def outputs(self, key, frame_kind=None):
        if key not in self.entries:
            raise KeyError("no value stored under key %r" % (key,))
        out = []
        for i, v in enumerate(self.entries[key]):
            if v is UNSET:
                raise KeyError("output %d of key %r was announced but never sent" % (i, key))
            out.append(v.get(frame_kind) if isinstance(v, StoredArrow) else v)
        return out

    def output(self, key, index, frame_kind=None):
        outs = self.outputs(key, frame_kind)
        if not (0 <= index < len(outs)):
            raise KeyError("key %r has %d outputs, no index %d" % (key, len(outs), index))
        return outs[index]

    def downstream(self, key, frame_kind=None):
        """The value as Mage passes it to a downstream block: L[0] if one output else L."""
        outs = self.outputs(key, frame_kind)
        return outs[0] if len(outs) == 1 else outs
