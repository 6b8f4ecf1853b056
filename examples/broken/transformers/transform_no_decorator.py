# missing-block-function: the function below is not decorated with @transformer,
# so Mage finds no block function ("does not have any decorated functions").


def transform(data, *args, **kwargs):
    return data
