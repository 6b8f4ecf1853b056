import pandas as pd

if 'data_loader' not in globals():
    from mage_ai.data_preparation.decorators import data_loader


@data_loader
def load_data(*args, **kwargs):
    """Valid loader of dag_errors."""
    return pd.DataFrame({'id': [1, 2, 3], 'value': [10.0, 20.0, 30.0]})
