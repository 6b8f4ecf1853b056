import os

import pandas as pd
from mage_ai.settings.repo import get_repo_path

if 'data_exporter' not in globals():
    from mage_ai.data_preparation.decorators import data_exporter


OUTPUT_FILE = os.path.join('output', 'yellow_taxi_clean.parquet')


@data_exporter
def export_data(data, *args, **kwargs) -> None:
    """Write the cleaned trips to output/yellow_taxi_clean.parquet (no database needed)."""
    if not isinstance(data, pd.DataFrame) and hasattr(data, 'to_pandas'):
        data = data.to_pandas()

    path = os.path.join(get_repo_path(), OUTPUT_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    data.to_parquet(path, index=False)
    print(f'Wrote {len(data)} trips to {path}')
