if 'data_exporter' not in globals():
    from mage_ai.data_preparation.decorators import data_exporter


@data_exporter
def export_data(data, *args, **kwargs) -> None:
    """Valid code; the pipeline entry's file_source.path names export_rows_v1.py instead."""
    print(f'{len(data)} rows')
