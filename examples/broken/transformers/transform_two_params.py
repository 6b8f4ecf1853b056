if 'transformer' not in globals():
    from mage_ai.data_preparation.decorators import transformer


# argument-count: two positional parameters, but the block has one upstream block
# (load_rows) and no *args.
@transformer
def transform(data, extra):
    return data
