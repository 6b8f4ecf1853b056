"""Minimal mage_ai shim shipped with Wand's Python worker.

Only what block files import at top level is provided: the decorators and
`mage_ai.settings.repo.get_repo_path`. This is not the real mage-ai package.
"""

__wand_shim__ = True
