"""Block decorators (spec 4.1).

Under Wand's worker each decorator registers the decorated function into the
collector of the block file being executed (so an unconditional top-level
`from mage_ai.data_preparation.decorators import transformer` works as well as
the `if 'transformer' not in globals():` idiom). Outside a block run they are
identity functions, like Mage's own. Every decorator may be used bare
(`@callback`) or with arguments (`@callback('success')`).
"""

try:
    from wand_worker.collector import make_decorator as _make_decorator
    from wand_worker.collector import register_current as _register_current
except ImportError:  # used outside the worker: plain identity decorators

    def _register_current(name, fn, args=()):
        return fn

    def _make_decorator(name, register):
        def decorator(*args, **kwargs):
            if len(args) == 1 and not kwargs and callable(args[0]) and not isinstance(args[0], str):
                return register(name, args[0], ())
            return lambda fn: register(name, fn, args)

        decorator.__name__ = name
        return decorator


def _d(name):
    return _make_decorator(name, _register_current)


data_loader = _d("data_loader")
transformer = _d("transformer")
data_exporter = _d("data_exporter")
custom = _d("custom")
sensor = _d("sensor")
test = _d("test")
condition = _d("condition")
callback = _d("callback")
on_success = _d("on_success")
on_failure = _d("on_failure")
extension = _d("extension")
preprocesser = _d("preprocesser")
preprocesser_functions = _d("preprocesser_functions")
streaming_source = _d("streaming_source")
streaming_sink = _d("streaming_sink")
data_source = _d("data_source")
xy = _d("xy")
x = _d("x")
y = _d("y")
configuration = _d("configuration")
render = _d("render")
columns = _d("columns")
data_integration_source = _d("data_integration_source")
data_integration_destination = _d("data_integration_destination")
data_integration_catalog = _d("data_integration_catalog")
data_integration_config = _d("data_integration_config")
data_integration_selected_streams = _d("data_integration_selected_streams")
data_integration_query = _d("data_integration_query")


def collect_decorated_objs(decorated_objs):
    """As in Mage: a decorator that appends the decorated object to the given list."""

    def custom_code(function):
        decorated_objs.append(function)
        return function

    return custom_code
