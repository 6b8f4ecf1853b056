if 'callback' not in globals():
    from mage_ai.data_preparation.decorators import callback


@callback('success')
def notify_success(parent_block_data, **kwargs):
    """Valid code; the callback entry reuses the uuid of a custom block (duplicate-uuid)."""
    print('parent block succeeded')
