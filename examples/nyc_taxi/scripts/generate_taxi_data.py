#!/usr/bin/env python3
"""Generate synthetic NYC yellow-taxi trip records (2021 schema) as a gzipped CSV.

The numbers are made up but shaped like the public January 2021 file: the same
18 columns, realistic value ranges, a block of rows without vendor/passenger/
rate/payment information, some zero-passenger trips and some zero distances,
so that the `transform_taxi_data` block has rows to drop.

Usage:
    python scripts/generate_taxi_data.py                     # ~1.37M rows -> data/yellow_tripdata_2021-01.full.csv.gz
    python scripts/generate_taxi_data.py --rows 10000 --seed 42 \
        --out data/yellow_tripdata_sample.csv.gz             # the committed sample

Output is deterministic for a given (rows, seed): the RNG is seeded and the
gzip header carries no timestamp or file name.
"""

import argparse
import gzip
import io
import os

import numpy as np
import pandas as pd

DEFAULT_ROWS = 1369765
DEFAULT_SEED = 42
PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(PROJECT_DIR, 'data', 'yellow_tripdata_2021-01.full.csv.gz')

COLUMNS = [
    'VendorID',
    'tpep_pickup_datetime',
    'tpep_dropoff_datetime',
    'passenger_count',
    'trip_distance',
    'RatecodeID',
    'store_and_fwd_flag',
    'PULocationID',
    'DOLocationID',
    'payment_type',
    'fare_amount',
    'extra',
    'mta_tax',
    'tip_amount',
    'tolls_amount',
    'improvement_surcharge',
    'total_amount',
    'congestion_surcharge',
]

# Share of trips starting in each hour of the day (night is quiet, evening busy).
HOUR_WEIGHTS = np.array([
    2.0, 1.4, 1.0, 0.7, 0.6, 0.8, 1.8, 3.2, 4.2, 4.4, 4.5, 4.8,
    5.1, 5.3, 5.6, 5.8, 5.9, 6.3, 6.4, 5.9, 5.0, 4.6, 4.0, 3.0,
])


def _choice(rng, values, weights, size):
    weights = np.asarray(weights, dtype=float)
    return rng.choice(np.asarray(values), size=size, p=weights / weights.sum())


def generate(rows, seed):
    """Return a DataFrame of `rows` synthetic trips; pure function of (rows, seed)."""
    rng = np.random.default_rng(seed)
    n = rows

    # Pickup time: a day of January 2021, an hour following HOUR_WEIGHTS, uniform seconds.
    day = rng.integers(0, 31, size=n)
    hour = _choice(rng, np.arange(24), HOUR_WEIGHTS, n)
    second = rng.integers(0, 3600, size=n)
    offset_s = day * 86400 + hour * 3600 + second
    pickup = np.datetime64('2021-01-01T00:00:00', 's') + offset_s.astype('timedelta64[s]')

    # Distance in miles: log-normal around 1.7 mi, capped; about 1% recorded as 0.
    distance = np.round(np.minimum(rng.lognormal(mean=0.55, sigma=0.85, size=n), 60.0), 2)
    distance[rng.random(n) < 0.01] = 0.0

    # Duration: ~3.5 min/mile plus a fixed part and noise, at least 1 minute.
    minutes = np.maximum(1.0, 2.0 + distance * rng.normal(3.5, 0.8, size=n) + rng.exponential(3.0, size=n))
    dropoff = pickup + np.round(minutes * 60).astype('timedelta64[s]')

    vendor = _choice(rng, [1, 2], [0.32, 0.68], n)
    passengers = _choice(rng, [0, 1, 2, 3, 4, 5, 6], [2.0, 70.0, 14.0, 4.0, 2.0, 5.0, 3.0], n)
    ratecode = _choice(rng, [1, 2, 3, 4, 5, 99], [96.5, 2.2, 0.3, 0.2, 0.7, 0.1], n)
    store_flag = _choice(rng, ['N', 'Y'], [0.99, 0.01], n).astype(object)
    payment = _choice(rng, [1, 2, 3, 4], [70.0, 28.0, 1.2, 0.8], n)

    # Zones 1..265; a few busy (Manhattan-like) zones get most of the trips.
    zone_weights = rng.pareto(1.2, size=265) + 0.05
    pu_zone = _choice(rng, np.arange(1, 266), zone_weights, n)
    do_zone = _choice(rng, np.arange(1, 266), zone_weights, n)

    fare = np.round(2.5 + 2.5 * distance + 0.35 * minutes, 1)
    fare = np.where(ratecode == 2, 52.0, fare)            # JFK flat fare
    extra = _choice(rng, [0.0, 0.5, 1.0, 2.5, 3.0], [30.0, 35.0, 10.0, 20.0, 5.0], n)
    mta_tax = np.full(n, 0.5)
    improvement = np.full(n, 0.3)
    congestion = _choice(rng, [2.5, 0.0], [0.9, 0.1], n)
    tolls = np.where(rng.random(n) < 0.04, 6.12, 0.0)
    tip = np.where(payment == 1, np.round(fare * rng.uniform(0.1, 0.3, size=n), 2), 0.0)
    total = np.round(fare + extra + mta_tax + tip + tolls + improvement + congestion, 2)

    df = pd.DataFrame({
        'VendorID': pd.array(vendor, dtype='Int64'),
        'tpep_pickup_datetime': pickup,
        'tpep_dropoff_datetime': dropoff,
        'passenger_count': pd.array(passengers, dtype='Int64'),
        'trip_distance': distance,
        'RatecodeID': pd.array(ratecode, dtype='Int64'),
        'store_and_fwd_flag': store_flag,
        'PULocationID': pu_zone,
        'DOLocationID': do_zone,
        'payment_type': pd.array(payment, dtype='Int64'),
        'fare_amount': fare,
        'extra': extra,
        'mta_tax': mta_tax,
        'tip_amount': tip,
        'tolls_amount': tolls,
        'improvement_surcharge': improvement,
        'total_amount': total,
        'congestion_surcharge': congestion,
    }, columns=COLUMNS)

    # As in the real file, about 2% of the trips (street-hail apps etc.) carry no
    # vendor, passenger count, rate code, store-and-forward flag or payment type.
    unknown = rng.random(n) < 0.02
    for column in ['VendorID', 'passenger_count', 'RatecodeID', 'payment_type']:
        df.loc[unknown, column] = pd.NA
    df.loc[unknown, 'store_and_fwd_flag'] = None
    return df


def write_csv_gz(df, path):
    """Write df as CSV into a gzip file whose header has no mtime or name (byte-reproducible)."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    with open(path, 'wb') as raw, gzip.GzipFile(filename='', mode='wb', fileobj=raw, compresslevel=6, mtime=0) as gz:
        with io.TextIOWrapper(gz, encoding='utf-8', newline='') as text:
            df.to_csv(text, index=False, date_format='%Y-%m-%d %H:%M:%S', lineterminator='\n')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rows', type=int, default=DEFAULT_ROWS, help=f'number of trips (default {DEFAULT_ROWS})')
    parser.add_argument('--seed', type=int, default=DEFAULT_SEED, help=f'random seed (default {DEFAULT_SEED})')
    parser.add_argument('--out', default=DEFAULT_OUT, help='output .csv.gz path (default %(default)s)')
    args = parser.parse_args(argv)
    if args.rows < 0:
        parser.error('--rows must be >= 0')

    df = generate(args.rows, args.seed)
    write_csv_gz(df, args.out)
    print(f'wrote {len(df)} rows to {args.out}')


if __name__ == '__main__':
    main()
