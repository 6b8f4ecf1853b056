if 'transformer' not in globals():
    from mage_ai.data_preparation.decorators import transformer


@transformer
def transform(data, *args, **kwargs):
    """Valid code; its pipeline entry has an invalid executor_type."""
    return data
