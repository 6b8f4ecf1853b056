"""The current block collector: decorators (from the exec globals or from the
mage_ai shim) register decorated functions here while a block file is executed."""

current = None  # the Collector of the block file being executed, or None


class Collector:
    def __init__(self):
        self.items = []  # (decorator name, decorator args, function) in definition order

    def register(self, name, fn, args=()):
        self.items.append((name, tuple(args), fn))
        return fn

    def functions(self, names, status=None):
        out = []
        for name, args, fn in self.items:
            if name not in names:
                continue
            if status is not None and _callback_status(name, args) != status:
                continue
            out.append(fn)
        return out

    def decorator(self, name):
        return make_decorator(name, self.register)


def _callback_status(name, args):
    if name == "on_success":
        return "success"
    if name == "on_failure":
        return "failure"
    if args and isinstance(args[0], str):
        return args[0]
    return "success"


def register_current(name, fn, args=()):
    if current is not None:
        current.register(name, fn, args)
    return fn


def make_decorator(name, register):
    """A decorator usable bare (@transformer) or with arguments (@callback('success'))."""

    def decorator(*args, **kwargs):
        if len(args) == 1 and not kwargs and callable(args[0]) and not isinstance(args[0], str):
            return register(name, args[0], ())

        def wrap(fn):
            return register(name, fn, args)

        return wrap

    decorator.__name__ = name
    decorator.__qualname__ = name
    return decorator
