"""The HTTP service (``billbridge serve``): a thin ASGI layer over :class:`~billbridge.Engine`.

:func:`~billbridge.api.app.create_app` builds the Starlette application; routes are declared
once per resource module (:mod:`billbridge.api.resources`) and the OpenAPI document is generated
from the same declarations. Everything the API does is an engine call: there is no behaviour
only reachable over HTTP.
"""

from billbridge.api.app import create_app
from billbridge.api.settings import ApiSettings
from billbridge.api.worker import BackgroundWorker

__all__ = ["ApiSettings", "BackgroundWorker", "create_app"]
