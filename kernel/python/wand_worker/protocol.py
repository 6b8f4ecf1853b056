"""Frame encoding/decoding (see PROTOCOL.md, section "Framing")."""

import json
import os
import struct
import threading

MAX_HEADER_LEN = 16 * 1024 * 1024  # 16 MiB
MAX_PAYLOAD_LEN = 1 << 40  # 1 TiB: anything above is treated as broken framing


class FramingError(Exception):
    """The byte stream cannot be re-synchronised (fatal)."""


class HeaderError(Exception):
    """A complete frame was read but its header is unusable (recoverable)."""

    def __init__(self, message, msg_id=None):
        super().__init__(message)
        self.msg_id = msg_id


def _read_exact(fd, n, at_frame_start=False):
    """Read exactly `n` bytes into one buffer (no per-chunk copies: payloads can be gigabytes)."""
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        count = os.readv(fd, [view[got : got + (1 << 24)]])
        if count == 0:
            if at_frame_start and got == 0:
                return None  # clean EOF between frames
            raise FramingError(
                "unexpected end of input inside a frame (wanted %d more bytes)" % (n - got)
            )
        got += count
    return bytes(buf) if n < (1 << 16) else buf


def read_frame(fd):
    """Return (header, payload), None on clean EOF.

    Raises FramingError (fatal) or HeaderError (frame skipped, stream still in sync).
    """
    raw = _read_exact(fd, 4, at_frame_start=True)
    if raw is None:
        return None
    (hlen,) = struct.unpack(">I", raw)
    if hlen > MAX_HEADER_LEN:
        raise FramingError("header length %d exceeds the limit of %d bytes" % (hlen, MAX_HEADER_LEN))
    hbytes = _read_exact(fd, hlen)
    (plen,) = struct.unpack(">Q", _read_exact(fd, 8))
    if plen > MAX_PAYLOAD_LEN:
        raise FramingError("payload length %d exceeds the limit of %d bytes" % (plen, MAX_PAYLOAD_LEN))
    payload = _read_exact(fd, plen) if plen else b""
    try:
        header = json.loads(hbytes.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise HeaderError("header is not valid UTF-8 JSON: %s" % e)
    if not isinstance(header, dict):
        raise HeaderError("header is not a JSON object")
    msg_id = header.get("id")
    if msg_id is not None and (not isinstance(msg_id, int) or isinstance(msg_id, bool)):
        raise HeaderError("field 'id' must be an integer", None)
    if not isinstance(header.get("type"), str):
        raise HeaderError("header has no string field 'type'", msg_id)
    return header, payload


def _prefix(header, payload_len):
    hbytes = json.dumps(header, ensure_ascii=False, allow_nan=False, default=str).encode("utf-8")
    return b"".join((struct.pack(">I", len(hbytes)), hbytes, struct.pack(">Q", payload_len)))


def _payload_view(payload):
    """A flat byte view of `payload` (bytes, bytearray, memoryview or a pyarrow Buffer)."""
    return memoryview(payload or b"").cast("B")


def encode_frame(header, payload=b""):
    view = _payload_view(payload)
    return _prefix(header, view.nbytes) + view.tobytes()


class FrameWriter:
    """Thread-safe writer of whole frames to a file descriptor. The payload is written from
    its own buffer, never joined with the header (a frame's payload can be a large Arrow
    stream)."""

    def __init__(self, fd):
        self.fd = fd
        self.lock = threading.Lock()

    def _write_all(self, view):
        while view:
            n = os.write(self.fd, view)
            view = view[n:]

    def send(self, header, payload=b""):
        view = _payload_view(payload)
        prefix = _prefix(header, view.nbytes)
        with self.lock:
            if view.nbytes <= (1 << 16):
                self._write_all(memoryview(prefix + view.tobytes()))
            else:
                self._write_all(memoryview(prefix))
                self._write_all(view)
