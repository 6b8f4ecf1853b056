"""Wand's Python worker: runs Mage block files for the Rust engine.

See ../PROTOCOL.md for the wire protocol. Start with ``python3 -u -m wand_worker``.
"""

PROTOCOL_VERSION = 1
