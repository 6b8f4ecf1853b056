"""`mage_ai.io.file.FileIO`: files through pandas (CSV, CSV.gz, Parquet, JSON)."""

import os

from mage_ai.io.base import QUERY_ROW_LIMIT


def _format(filepath, format):
    if format:
        return str(getattr(format, 'value', format)).lower()
    name = str(filepath).lower()
    for suffix in ('.gz', '.bz2', '.zip', '.xz', '.zst'):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    ext = os.path.splitext(name)[1].lstrip('.')
    return {'pq': 'parquet', 'jsonl': 'json', 'ndjson': 'json'}.get(ext, ext or 'csv')


class FileIO:
    def __init__(self, verbose=False, **kwargs):
        self.verbose = verbose

    @classmethod
    def with_config(cls, config=None, **kwargs):
        return cls(**kwargs)

    def load(self, filepath, format=None, limit=QUERY_ROW_LIMIT, **kwargs):
        import pandas as pd

        fmt = _format(filepath, format)
        if fmt == 'csv':
            df = pd.read_csv(filepath, **kwargs)
        elif fmt == 'parquet':
            df = pd.read_parquet(filepath, **kwargs)
        elif fmt == 'json':
            lines = kwargs.pop('lines', str(filepath).lower().split('.gz')[0].endswith(('.jsonl', '.ndjson')))
            df = pd.read_json(filepath, lines=lines, **kwargs)
        else:
            raise ValueError('FileIO cannot read %r files (%s)' % (fmt, filepath))
        return df.head(limit) if limit is not None else df

    def export(self, df, filepath, format=None, **kwargs):
        fmt = _format(filepath, format)
        parent = os.path.dirname(os.path.abspath(filepath))
        os.makedirs(parent, exist_ok=True)
        if fmt == 'csv':
            kwargs.setdefault('index', False)
            df.to_csv(filepath, **kwargs)
        elif fmt == 'parquet':
            df.to_parquet(filepath, **kwargs)
        elif fmt == 'json':
            kwargs.setdefault('orient', 'records')
            df.to_json(filepath, **kwargs)
        else:
            raise ValueError('FileIO cannot write %r files (%s)' % (fmt, filepath))
