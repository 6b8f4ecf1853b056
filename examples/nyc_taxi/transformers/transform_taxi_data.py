import re

if 'transformer' not in globals():
    from mage_ai.data_preparation.decorators import transformer
if 'test' not in globals():
    from mage_ai.data_preparation.decorators import test


COLUMN_RENAMES = {
    'VendorID': 'vendor_id',
    'RatecodeID': 'ratecode_id',
    'PULocationID': 'pu_location_id',
    'DOLocationID': 'do_location_id',
}
KNOWN_VENDORS = {1, 2}


@transformer
def transform(data, *args, **kwargs):
    """
    Keep trips that carried passengers over a positive distance, add the pickup
    date and give every column a snake_case name.
    """
    has_passengers = data['passenger_count'].fillna(0) > 0
    has_distance = data['trip_distance'] > 0
    print(f'Rows without passengers: {(~has_passengers).sum()}')
    print(f'Rows without distance: {(~has_distance).sum()}')

    data = data[has_passengers & has_distance].copy()
    data['tpep_pickup_date'] = data['tpep_pickup_datetime'].dt.date
    data = data.rename(columns=COLUMN_RENAMES)
    data.columns = [to_snake_case(column) for column in data.columns]
    return data


def to_snake_case(name):
    name = re.sub(r'([A-Z]+)([A-Z][a-z])', r'\1_\2', name)
    name = re.sub(r'([a-z0-9])([A-Z])', r'\1_\2', name)
    return name.lower()


@test
def test_no_zero_passengers(output, *args) -> None:
    assert (output['passenger_count'] > 0).all(), 'There are trips without passengers'


@test
def test_positive_distance(output, *args) -> None:
    assert (output['trip_distance'] > 0).all(), 'There are trips with a distance of 0 or less'


@test
def test_vendor_ids(output, *args) -> None:
    vendors = set(output['vendor_id'].dropna().unique())
    assert vendors <= KNOWN_VENDORS, f'Unexpected vendor_id values: {sorted(vendors - KNOWN_VENDORS)}'


@test
def test_snake_case_columns(output, *args) -> None:
    for column in output.columns:
        assert column == to_snake_case(column), f'Column {column} is not snake_case'
    assert 'vendor_id' in output.columns, 'vendor_id column is missing'
    assert 'tpep_pickup_date' in output.columns, 'tpep_pickup_date column is missing'
