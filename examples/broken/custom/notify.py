if 'custom' not in globals():
    from mage_ai.data_preparation.decorators import custom


@custom
def notify(*args, **kwargs):
    """Valid code; its uuid is also used by a callback of the same pipeline (duplicate-uuid)."""
    print('pipeline finished')
