from os import path

from mage_ai.io.config import ConfigFileLoader
from mage_ai.io.postgres import Postgres
from mage_ai.settings.repo import get_repo_path

if 'data_exporter' not in globals():
    from mage_ai.data_preparation.decorators import data_exporter


SCHEMA_NAME = 'public'
TABLE_NAME = 'yellow_taxi_data'


@data_exporter
def export_data_to_postgres(df, **kwargs) -> None:
    """
    Replace the table public.yellow_taxi_data with the cleaned trips, using the
    `dev` profile of io_config.yaml (filled from the POSTGRES_* environment variables).
    """
    config_path = path.join(get_repo_path(), 'io_config.yaml')
    config_profile = 'dev'

    with Postgres.with_config(ConfigFileLoader(config_path, config_profile)) as loader:
        loader.export(
            df,
            SCHEMA_NAME,
            TABLE_NAME,
            index=False,
            if_exists='replace',
        )
    print(f'Exported {len(df)} rows to {SCHEMA_NAME}.{TABLE_NAME}')
