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
    chunks = []
    remaining = n
    while remaining > 0:
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            if at_frame_start and remaining == n:
                return None  # clean EOF between frames
            raise FramingError(
                "unexpected end of input inside a frame (wanted %d more bytes)" % remaining
            )
        chunks.append(chunk)
        remaining -= len(chunk)
        at_frame_start = False
    return b"".join(chunks)


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


def encode_frame(header, payload=b""):
    hbytes = json.dumps(header, ensure_ascii=False, allow_nan=False, default=str).encode("utf-8")
    payload = payload or b""
    return b"".join(
        (struct.pack(">I", len(hbytes)), hbytes, struct.pack(">Q", len(payload)), payload)
    )


class FrameWriter:
    """Thread-safe writer of whole frames to a file descriptor."""

    def __init__(self, fd):
        self.fd = fd
        self.lock = threading.Lock()

    def send(self, header, payload=b""):
        data = encode_frame(header, payload)
        with self.lock:
            view = memoryview(data)
            while view:
                n = os.write(self.fd, view)
                view = view[n:]
