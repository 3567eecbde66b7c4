"""The HTTP service (``billbridge serve``): a thin ASGI layer over :class:`~billbridge.Engine`.

:func:`~billbridge.api.app.create_app` builds the Starlette application; routes are declared
once per resource module (:mod:`billbridge.api.resources`) and the OpenAPI document is generated
from the same declarations. Everything the API does is an engine call: there is no behaviour
only reachable over HTTP.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what type checkers see; at run time the names are made on first use
    from billbridge.api.app import create_app as create_app
    from billbridge.api.settings import ApiSettings as ApiSettings
    from billbridge.api.worker import BackgroundWorker as BackgroundWorker

__all__ = ["ApiSettings", "BackgroundWorker", "create_app"]


def __getattr__(name: str) -> Any:
    # Imported on first use: the resource modules import this package's submodules, and the
    # app imports them; importing the app here would make the package import itself.
    if name == "create_app":
        from billbridge.api.app import create_app

        return create_app
    if name == "ApiSettings":
        from billbridge.api.settings import ApiSettings

        return ApiSettings
    if name == "BackgroundWorker":
        from billbridge.api.worker import BackgroundWorker

        return BackgroundWorker
    raise AttributeError(f"module 'billbridge.api' has no attribute {name!r}")
