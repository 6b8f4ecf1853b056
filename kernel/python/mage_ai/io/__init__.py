"""Wand's `mage_ai.io`: Postgres (through the engine) and FileIO (pandas)."""
