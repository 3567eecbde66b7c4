"""Services: what the engine does, each over a unit-of-work factory and the plugin registry.

No service holds the :class:`~billbridge.engine.Engine`; the engine composes them.
"""
