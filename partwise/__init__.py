"""partwise: part-level human activity understanding in images and video."""

__version__ = "0.1.0"

#: the Python API (:mod:`partwise.api`), imported on first use: ``import partwise`` stays light.
_API = ("run", "Results", "FrameResult")


def __getattr__(name: str):
    if name in _API:
        from partwise import api

        return getattr(api, name)
    raise AttributeError(f"module 'partwise' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_API))
