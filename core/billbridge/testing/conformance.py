"""The conformance kit for destination plugins, shipped as a pytest plugin.

Installing billbridge registers this module with pytest (entry point ``pytest11``:
``billbridge``). It only registers the ``conformance`` marker; it adds no tests by itself, so
it costs nothing in test runs that do not use it (disable it with ``-p no:billbridge``). A
plugin author subclasses :class:`DestinationConformance` in a test module of their own::

    import pytest
    from billbridge.testing.conformance import DestinationConformance, Harness

    class TestWebhook(DestinationConformance):
        destination = "webhook"
        valid_configs = [{"url": "https://hooks.example.com/bills", "secret": "s" * 32}]
        invalid_configs = [({"url": "not a url", "secret": "s" * 32}, "/url")]

        @pytest.fixture
        def harness(self):
            ...  # start your fake, yield Harness(connection=..., documents=...)

and pytest runs every check against the plugin as the engine finds it (its entry point). The
checks, the :class:`Harness` fields and the class attributes are described in
``docs/writing-a-destination.md``. Run only the kit with ``pytest -m conformance``.

The names below are imported on first use, so that pytest runs that never touch the kit do not
pay for jsonschema and the plugin registry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from billbridge.testing.checks import hook_argument_problems
    from billbridge.testing.recorder import RecordedRequest, RecordingMiddleware
    from billbridge.testing.samples import (
        SAMPLE_ACCOUNT_ID,
        SAMPLE_PRODUCT_IDS,
        sample_account,
        sample_bill,
    )
    from billbridge.testing.suite import BillFactory, DestinationConformance, Harness, no_network
    from billbridge.testing.tokens import (
        OAuthTestApp,
        ObtainedTokens,
        obtain_tokens,
        refresh_tokens,
    )

__all__ = [
    "SAMPLE_ACCOUNT_ID",
    "SAMPLE_PRODUCT_IDS",
    "BillFactory",
    "DestinationConformance",
    "Harness",
    "OAuthTestApp",
    "ObtainedTokens",
    "RecordedRequest",
    "RecordingMiddleware",
    "hook_argument_problems",
    "no_network",
    "obtain_tokens",
    "pytest_configure",
    "refresh_tokens",
    "sample_account",
    "sample_bill",
]

_LAZY = {
    "BillFactory": "billbridge.testing.suite",
    "DestinationConformance": "billbridge.testing.suite",
    "Harness": "billbridge.testing.suite",
    "no_network": "billbridge.testing.suite",
    "hook_argument_problems": "billbridge.testing.checks",
    "RecordedRequest": "billbridge.testing.recorder",
    "RecordingMiddleware": "billbridge.testing.recorder",
    "SAMPLE_ACCOUNT_ID": "billbridge.testing.samples",
    "SAMPLE_PRODUCT_IDS": "billbridge.testing.samples",
    "sample_account": "billbridge.testing.samples",
    "sample_bill": "billbridge.testing.samples",
    "obtain_tokens": "billbridge.testing.tokens",
    "refresh_tokens": "billbridge.testing.tokens",
    "OAuthTestApp": "billbridge.testing.tokens",
    "ObtainedTokens": "billbridge.testing.tokens",
}

MARKER = "conformance: a billbridge destination conformance check (billbridge.testing.conformance)"


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``conformance`` marker (the suite's tests carry it)."""
    config.addinivalue_line("markers", MARKER)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
