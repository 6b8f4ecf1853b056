import os

import pandas as pd
from mage_ai.settings.repo import get_repo_path

if 'data_loader' not in globals():
    from mage_ai.data_preparation.decorators import data_loader
if 'test' not in globals():
    from mage_ai.data_preparation.decorators import test


DEFAULT_TAXI_FILE = 'data/yellow_tripdata_sample.csv.gz'

# Integer columns may be empty in the source file, so they use pandas' nullable Int64.
TAXI_DTYPES = {
    'VendorID': pd.Int64Dtype(),
    'passenger_count': pd.Int64Dtype(),
    'trip_distance': float,
    'RatecodeID': pd.Int64Dtype(),
    'store_and_fwd_flag': str,
    'PULocationID': pd.Int64Dtype(),
    'DOLocationID': pd.Int64Dtype(),
    'payment_type': pd.Int64Dtype(),
    'fare_amount': float,
    'extra': float,
    'mta_tax': float,
    'tip_amount': float,
    'tolls_amount': float,
    'improvement_surcharge': float,
    'total_amount': float,
    'congestion_surcharge': float,
}
TAXI_DATE_COLUMNS = ['tpep_pickup_datetime', 'tpep_dropoff_datetime']


def resolve_taxi_source(source):
    """URLs and absolute paths are used as given; relative paths are taken from the project root."""
    if '://' in source or os.path.isabs(source):
        return source
    return os.path.join(get_repo_path(), source)


@data_loader
def load_data(*args, **kwargs):
    """
    Read yellow-taxi trips from a (gzipped) CSV file or URL.

    The pipeline variable `taxi_url` chooses the source; without it the small
    synthetic sample shipped in data/ is read.
    """
    source = resolve_taxi_source(kwargs.get('taxi_url') or DEFAULT_TAXI_FILE)
    print(f'Reading taxi trips from {source}')
    return pd.read_csv(
        source,
        sep=',',
        compression='infer',
        dtype=TAXI_DTYPES,
        parse_dates=TAXI_DATE_COLUMNS,
    )


@test
def test_output(output, *args) -> None:
    assert output is not None, 'The output is undefined'
    assert len(output) > 0, 'No taxi trips were loaded'
    for column in TAXI_DATE_COLUMNS:
        assert pd.api.types.is_datetime64_any_dtype(output[column]), f'{column} is not a datetime column'
