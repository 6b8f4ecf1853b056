import os

import pandas as pd
from mage_ai.settings.repo import get_repo_path

if 'data_exporter' not in globals():
    from mage_ai.data_preparation.decorators import data_exporter


OUTPUT_FILE = os.path.join('output', 'trips_per_day.parquet')


@data_exporter
def export_data(data, *args, **kwargs) -> None:
    """
    Write the daily summary to output/trips_per_day.parquet.

    The SQL block before this one yields a pandas DataFrame under Mage and a
    polars DataFrame under Wand; both are written through pandas.
    """
    if not isinstance(data, pd.DataFrame) and hasattr(data, 'to_pandas'):
        data = data.to_pandas()

    path = os.path.join(get_repo_path(), OUTPUT_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    data.to_parquet(path, index=False)
    print(f'Wrote {len(data)} days to {path}')
