"""Fixtures of the HTTP API tests: an engine on SQLite or PostgreSQL, the app served by uvicorn
on loopback, API keys, a client that checks every answer against the OpenAPI document, and the
QuickBooks and Xero emulators.

Every request goes over real HTTP (httpx → uvicorn → Starlette → engine), as a billing service
or the console would send it.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
from jsonschema import Draft202012Validator

from billbridge import Engine
from billbridge.api import ApiSettings, create_app
from billbridge.domain.models import Secret, dumps, loads
from billbridge.secrets import SecretBox, generate_key
from billbridge.settings import DestinationSettings, Settings
from billbridge.testing.emulation.emulators import EmulatorHandle, emulator_module
from billbridge.testing.emulation.server import RunningServer, serve

# The fake OAuth destination shared with the core's credential and delivery tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

QUICKBOOKS_COMPANY = ("9341454000000001", "Demo Company (US)")
XERO_UK = ("b1b2c3d4-0000-4000-8000-0000000000a1", "Demo UK Ltd")
XERO_US = ("b1b2c3d4-0000-4000-8000-0000000000b2", "Demo US Inc")


def sample(name: str) -> Any:
    """A sample bill or account shipped with billbridge (``billbridge/demo_samples``)."""
    text = resources.files("billbridge").joinpath("demo_samples", name).read_text("utf-8")
    return loads(text)


# --- a client that holds the API to its OpenAPI document -----------------------------------------


class Documented:
    """Finds the documented response schema of a request and validates answers against it."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document
        self.routes = [
            (re.compile("^" + re.sub(r"{\w+}", "[^/]+", path) + "$"), path)
            for path in document["paths"]
        ]

    def template(self, path: str) -> str:
        template = next((t for pattern, t in self.routes if pattern.match(path)), None)
        assert template is not None, f"{path} is not in the OpenAPI document"
        return template

    def schema(self, method: str, path: str, status: int) -> dict[str, Any] | None:
        template = self.template(path)
        operation = self.document["paths"][template].get(method.lower())
        assert operation is not None, f"{method} {template} is not in the OpenAPI document"
        response = operation["responses"].get(str(status))
        assert response is not None, f"{method} {template} does not document {status}"
        content = response.get("content", {}).get("application/json")
        return None if content is None else content["schema"]

    def check(self, method: str, path: str, response: httpx.Response) -> None:
        schema = self.schema(method, path, response.status_code)
        if schema is None:
            return
        root = {**schema, "components": self.document["components"]}
        errors = sorted(
            Draft202012Validator(
                root, format_checker=Draft202012Validator.FORMAT_CHECKER
            ).iter_errors(loads(response.text)),
            key=str,
        )
        assert not errors, f"{method} {path} → {response.status_code}: {errors[0].message}"


@attrs.define
class Api:
    """An HTTP client of the served API: every answer is checked against the OpenAPI document
    and kept, for the test that scans all of them for secrets."""

    url: str
    admin_key: str
    read_key: str
    documented: Documented
    http: httpx.Client = attrs.field(factory=lambda: httpx.Client(timeout=60))
    answers: list[str] = attrs.field(factory=list)
    #: Every route called, as (method, path template).
    called: set[tuple[str, str]] = attrs.field(factory=set)

    def request(
        self,
        method: str,
        path: str,
        *,
        expect: int | None = None,
        key: str | bool | None = True,
        **kwargs: Any,
    ) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        if key is True:
            key = self.admin_key
        if isinstance(key, str):
            headers.setdefault("Authorization", f"Bearer {key}")
        if "json" in kwargs:  # exact decimals, as billbridge writes them
            body = kwargs.pop("json")
            if body is not None:
                kwargs["content"] = dumps(body)
                headers.setdefault("Content-Type", "application/json")
        response = self.http.request(method, self.url + path, headers=headers, **kwargs)
        self.answers.append(response.text)
        self.called.add((method, self.documented.template(path.split("?", 1)[0])))
        if expect is not None:
            assert response.status_code == expect, (
                f"{method} {path}: {response.status_code} {response.text[:500]}"
            )
        if response.headers.get("content-type", "").startswith("application/json"):
            self.documented.check(method, path.split("?", 1)[0], response)
        return response

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, expect=kwargs.pop("expect", 200), **kwargs).json()

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        response = self.request("POST", path, json=body, expect=kwargs.pop("expect", 200), **kwargs)
        return response.json() if response.content else None

    def put(self, path: str, body: Any, **kwargs: Any) -> Any:
        return self.request(
            "PUT", path, json=body, expect=kwargs.pop("expect", 200), **kwargs
        ).json()

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", path, expect=kwargs.pop("expect", 204), **kwargs)


@attrs.define
class Served:
    engine: Engine
    api: Api
    server: RunningServer


def make_engine(database_url: str, home: Path, **settings: Any) -> Engine:
    return Engine(
        database_url,
        settings=Settings(home=home, **settings),
        secret_box=SecretBox([generate_key()]),
    )


@pytest.fixture
def emulators() -> Iterator[dict[str, EmulatorHandle]]:
    """The QuickBooks and Xero emulators (from their plugins' entry points), on loopback."""
    quickbooks = emulator_module("quickbooks").start_demo(tenants=[QUICKBOOKS_COMPANY])
    xero = emulator_module("xero").start_demo(tenants=[XERO_UK, XERO_US])
    try:
        yield {"quickbooks": quickbooks, "xero": xero}
    finally:
        quickbooks.stop()
        xero.stop()


def emulator_settings(emulators: Mapping[str, EmulatorHandle]) -> dict[str, DestinationSettings]:
    """Destination settings sending the engine to the emulators."""
    found = {}
    for key, handle in emulators.items():
        endpoints = handle.endpoints()
        found[key] = DestinationSettings(
            client_id=handle.client_id,
            client_secret=Secret(handle.client_secret),
            api_base_url=endpoints["api_base_url"],
            authorize_url=endpoints["authorize_url"],
            token_url=endpoints["token_url"],
            revoke_url=endpoints["revoke_url"],
        )
    return found


def serve_api(engine: Engine, settings: ApiSettings | None = None) -> tuple[Api, RunningServer]:
    """The app over ``engine`` on a free loopback port, with an admin and a read key."""
    app = create_app(engine, settings or ApiSettings())
    server = serve(app)
    _, admin = engine.api_keys.create("test admin", "admin")
    _, read = engine.api_keys.create("test reader", "read")
    return Api(server.url, admin, read, Documented(app.state.openapi)), server


@pytest.fixture
def served(database_url: str, tmp_path: Path) -> Iterator[Served]:
    """The API over an engine with the installed destinations (no emulators)."""
    engine = make_engine(database_url, tmp_path)
    api, server = serve_api(engine)
    try:
        yield Served(engine, api, server)
    finally:
        server.stop()
        api.http.close()
        engine.close()


@pytest.fixture
def sqlite_served(sqlite_url: str, tmp_path: Path) -> Iterator[Served]:
    """:func:`served`, on SQLite only (for tests of the HTTP layer itself)."""
    engine = make_engine(sqlite_url, tmp_path)
    api, server = serve_api(engine)
    try:
        yield Served(engine, api, server)
    finally:
        server.stop()
        api.http.close()
        engine.close()


@pytest.fixture
def with_emulators(
    database_url: str, tmp_path: Path, emulators: dict[str, EmulatorHandle]
) -> Iterator[tuple[Served, dict[str, EmulatorHandle]]]:
    """The API over an engine talking to the QuickBooks and Xero emulators."""
    engine = make_engine(database_url, tmp_path, destinations=emulator_settings(emulators))
    api, server = serve_api(engine)
    try:
        yield Served(engine, api, server), emulators
    finally:
        server.stop()
        api.http.close()
        engine.close()


def pretty(value: Any) -> str:
    """JSON for assertion messages."""
    return json.dumps(value, indent=1, default=str)[:2000]
