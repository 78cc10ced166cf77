"""The one argument helper the kernel wrappers share."""


def pair(v, name, minimum=0):
    """An int or a pair of ints -> (vertical, horizontal), each at least ``minimum``."""
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}")
        a, b = int(v[0]), int(v[1])
    else:
        a = b = int(v)
    if a < minimum or b < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {v!r}")
    return a, b
