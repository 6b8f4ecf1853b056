"""`ConfigFileLoader` for Wand: it only remembers the io_config.yaml path and profile.

Wand's engine (Rust) renders the file (env_var, json_value, mage_secret_var) and connects to the
database itself, so secrets never pass through Python. Reading single keys (`loader[key]`) is
not supported.
"""

import os
from enum import Enum


class ConfigKey(str, Enum):
    POSTGRES_CONNECT_TIMEOUT = 'POSTGRES_CONNECT_TIMEOUT'
    POSTGRES_CONNECTION_METHOD = 'POSTGRES_CONNECTION_METHOD'
    POSTGRES_DBNAME = 'POSTGRES_DBNAME'
    POSTGRES_HOST = 'POSTGRES_HOST'
    POSTGRES_PASSWORD = 'POSTGRES_PASSWORD'
    POSTGRES_PORT = 'POSTGRES_PORT'
    POSTGRES_SCHEMA = 'POSTGRES_SCHEMA'
    POSTGRES_USER = 'POSTGRES_USER'


class BaseConfigLoader:
    pass


class ConfigFileLoader(BaseConfigLoader):
    def __init__(self, filepath=None, profile='default', config=None):
        if filepath is None and config is None:
            from mage_ai.settings.repo import get_repo_path

            filepath = os.path.join(get_repo_path(), 'io_config.yaml')
        self.filepath = os.path.abspath(filepath) if filepath else None
        self.profile = profile or 'default'
        self.config = dict(config) if config else None

    def _wand_source(self):
        """What the engine needs to find the settings (never the values)."""
        if self.config is not None:
            return {'config': {str(k.value if isinstance(k, Enum) else k): v for k, v in self.config.items()},
                    'profile': self.profile}
        return {'config_path': self.filepath, 'profile': self.profile}

    def __contains__(self, key):
        raise NotImplementedError(
            "Wand's ConfigFileLoader does not expose io_config values to Python; "
            'pass it to Postgres.with_config(...) instead'
        )

    __getitem__ = __contains__
    get = __contains__

    def __repr__(self):
        return 'ConfigFileLoader(%r, %r)' % (self.filepath, self.profile)
