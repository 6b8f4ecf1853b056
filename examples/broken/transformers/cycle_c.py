if 'transformer' not in globals():
    from mage_ai.data_preparation.decorators import transformer


@transformer
def transform(data, *args, **kwargs):
    """Valid code; part of the cycle cycle_a -> cycle_b -> cycle_c -> cycle_a."""
    return data
