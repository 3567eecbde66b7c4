"""billbridge: deliver m3ter-shaped bills into accounting systems as invoices.

The embedding API is :class:`Engine`; destination plugins implement hooks marked with
:data:`hookimpl` (see :mod:`billbridge.plugin.hookspecs`).
"""

from billbridge.plugin.hookspecs import hookimpl

__version__ = "0.1.0"

__all__ = ["Engine", "__version__", "hookimpl"]


def __getattr__(name: str) -> object:
    # The engine pulls in SQLAlchemy and Alembic; plugins importing ``hookimpl`` should not pay
    # for that, so ``Engine`` is imported on first use.
    if name == "Engine":
        from billbridge.engine import Engine

        return Engine
    raise AttributeError(f"module 'billbridge' has no attribute {name!r}")
