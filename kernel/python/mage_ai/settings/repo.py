"""`get_repo_path()` for block code (spec 1.1): the project the worker is running.

The worker sets MAGE_REPO_PATH to the request's project_path before each block run,
as Mage does; without it Mage falls back to the current directory.
"""

import os


def get_repo_path(*args, **kwargs):
    path = os.environ.get("MAGE_REPO_PATH")
    if path:
        return os.path.abspath(path)
    return os.getcwd()


def get_repo_name(*args, **kwargs):
    return os.path.basename(get_repo_path())
