if 'data_exporter' not in globals():
    from mage_ai.data_preparation.decorators import data_exporter


@data_exporter
def export_data(data, *args, **kwargs) -> None:
    """An older copy of export_rows.py, named by a stale configuration.file_source.path."""
    print(f'{len(data)} rows (v1)')
