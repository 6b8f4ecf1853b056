import pandas as pd

if 'data_loader' not in globals():
    from mage_ai.data_preparation.decorators import data_loader


@data_loader
def load_data(*args, **kwargs):
    """Second valid loader of file_errors (export_no_params has two upstream blocks)."""
    return pd.DataFrame({'id': [1, 2, 3], 'value': [10.0, 20.0, 30.0]})
