"""`mage_ai.io.postgres.Postgres` for Wand.

The class never talks to the database: every operation is an `io_request` to Wand's engine
(PROTOCOL.md 6.14), which connects with tokio-postgres and moves the rows with binary COPY.
Frames travel as Arrow IPC streams.
"""

from mage_ai.io.base import ExportWritePolicy
from mage_ai.io.config import BaseConfigLoader, ConfigFileLoader


def _engine():
    try:
        from wand_worker import worker
    except ImportError:
        worker = None
    current = getattr(worker, 'CURRENT', None) if worker else None
    if current is None or current.current_id is None:
        raise RuntimeError(
            'mage_ai.io.postgres.Postgres works inside blocks run by Wand '
            '(wand run / the Wand kernel): the engine does the database work'
        )
    return current


def _policy(if_exists):
    if isinstance(if_exists, ExportWritePolicy):
        return if_exists.value
    value = str(if_exists or 'replace').lower()
    if value not in ('append', 'replace', 'fail'):
        raise ValueError("if_exists must be 'append', 'replace' or 'fail', not %r" % (if_exists,))
    return value


def _to_arrow(df, index):
    import pyarrow as pa

    from wand_worker import codec

    try:
        import pandas as pd
    except ImportError:  # pragma: no cover
        pd = None
    if pd is not None and isinstance(df, pd.Series):
        df = df.to_frame()
    if pd is not None and isinstance(df, pd.DataFrame):
        df = df.reset_index() if index else df.reset_index(drop=True)
        table, _ = codec._pandas_frame_to_arrow(df)
    elif isinstance(df, pa.Table):
        table = df
    elif hasattr(df, 'to_arrow'):
        table = df.to_arrow()
    elif pd is not None:
        table, _ = codec._pandas_frame_to_arrow(pd.DataFrame(df))
    else:  # pragma: no cover
        raise TypeError('cannot export %s' % type(df).__name__)
    return codec._ipc_stream(table)


class Postgres:
    """Mage's Postgres loader: `with_config(ConfigFileLoader(path, profile))`, `export`,
    `load`, `execute`, usable as a context manager."""

    def __init__(self, dbname=None, user=None, password=None, host=None, port=None, schema=None,
                 connect_timeout=None, verbose=True, config_source=None, **kwargs):
        if config_source is not None:
            self._source = config_source
        else:
            inline = {
                'POSTGRES_DBNAME': dbname,
                'POSTGRES_USER': user,
                'POSTGRES_PASSWORD': password,
                'POSTGRES_HOST': host,
                'POSTGRES_PORT': port,
                'POSTGRES_SCHEMA': schema,
                'POSTGRES_CONNECT_TIMEOUT': connect_timeout,
            }
            self._source = {'config': {k: str(v) for k, v in inline.items() if v is not None}, 'profile': 'inline'}
        self.verbose = verbose
        self._open = False

    @classmethod
    def with_config(cls, config, **kwargs):
        if isinstance(config, BaseConfigLoader) and hasattr(config, '_wand_source'):
            return cls(config_source=config._wand_source(), **kwargs)
        if isinstance(config, dict):
            return cls(config_source=ConfigFileLoader(config=config)._wand_source(), **kwargs)
        raise TypeError('Postgres.with_config needs a ConfigFileLoader, not %s' % type(config).__name__)

    # Connections are opened by the engine for each operation.
    def open(self):
        self._open = True

    def close(self):
        self._open = False

    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _request(self, op, payload=b'', **fields):
        engine = _engine()
        header = dict(self._source)
        header.update({k: v for k, v in fields.items() if v is not None})
        header['op'] = op
        reply, data = engine.request_io(header, payload)
        if reply.get('status') != 'ok':
            raise Exception(reply.get('message') or 'the engine refused the %s request' % op)
        return reply, data

    def export(self, df, schema_name=None, table_name=None, index=False, if_exists='replace',
               verbose=True, **kwargs):
        if table_name is None:
            raise ValueError('Postgres.export needs a table_name')
        payload = _to_arrow(df, index)
        reply, _ = self._request('export', payload, schema=schema_name, table=table_name,
                                 if_exists=_policy(if_exists))
        return None

    def load(self, query_string, limit=None, display_query=None, verbose=True, **kwargs):
        from wand_worker import codec

        query = query_string.strip().rstrip(';')
        if limit is not None:
            query = 'SELECT * FROM (%s) AS wand_q LIMIT %d' % (query, int(limit))
        reply, data = self._request('load', query=query)
        return codec.decode_arrow(data).to_pandas()

    def execute(self, query_string, **kwargs):
        self._request('execute', query=query_string)

    def sample(self, schema, table, size=10_000, **kwargs):
        from mage_ai.io.postgres import _quote

        return self.load('SELECT * FROM %s.%s LIMIT %d' % (_quote(schema), _quote(table), int(size)))


def _quote(name):
    return '"%s"' % str(name).replace('"', '""')
