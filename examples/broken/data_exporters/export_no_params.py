if 'data_exporter' not in globals():
    from mage_ai.data_preparation.decorators import data_exporter


# argument-count: no parameters at all, but the block has two upstream blocks
# (load_rows, load_more) and no *args (nor **kwargs, which Mage also accepts as "var args").
@data_exporter
def export_data():
    print('nothing to do')
