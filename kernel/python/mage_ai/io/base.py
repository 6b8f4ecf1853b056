"""`mage_ai.io.base` names block code imports."""

from enum import Enum

QUERY_ROW_LIMIT = 10_000_000


class ExportWritePolicy(str, Enum):
    APPEND = 'append'
    FAIL = 'fail'
    REPLACE = 'replace'


class DataSource(str, Enum):
    POSTGRES = 'postgres'
    FILE = 'file'
