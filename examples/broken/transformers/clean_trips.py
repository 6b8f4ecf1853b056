if 'transformer' not in globals():
    from mage_ai.data_preparation.decorators import transformer


@transformer
def transform(data, *args, **kwargs):
    """Valid code; its pipeline entry names an unknown upstream block (*args absorbs any count)."""
    return data
