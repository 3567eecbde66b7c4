"""The OpenAPI document and the README keep up with the code.

The document is valid OpenAPI 3.1, documents every route the app serves (and nothing else),
every example in it is valid against its schema, and the README's curl examples run against a
live server. The README names every route.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from api_harness import Served
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_openapi
from starlette.routing import Route

from billbridge.api import create_app
from billbridge.api.app import endpoints
from billbridge.api.schemas import REQUESTS
from billbridge.domain.schemas import validate

README = Path(__file__).resolve().parents[3] / "README.md"


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from billbridge import Engine

    with Engine(f"sqlite:///{tmp_path_factory.mktemp('openapi') / 'bb.db'}") as engine:
        app = create_app(engine)
        doc: dict[str, Any] = app.state.openapi
        doc["x-routes"] = sorted(
            (method, route.path)
            for route in app.routes
            if isinstance(route, Route)
            for method in (route.methods or ())
            if method != "HEAD"
        )
        return doc


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    validate_openapi({k: v for k, v in document.items() if k != "x-routes"})
    assert document["openapi"] == "3.1.0"


def test_every_route_is_documented_and_nothing_else(document: dict[str, Any]) -> None:
    documented = sorted(
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
    )
    assert documented == document["x-routes"]


def test_every_operation_says_who_may_call_it(document: dict[str, Any]) -> None:
    ids = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            ids.append(operation["operationId"])
            assert operation["summary"], (method, path)
            public = operation.get("security") == []
            assert public != ("x-billbridge-scope" in operation), (method, path)
            if public:
                assert path in ("/healthz", "/readyz", "/api/oauth/callback")
            assert "500" in operation["responses"]
    assert len(ids) == len(set(ids))


def _resolved(schema: dict[str, Any], document: dict[str, Any]) -> Draft202012Validator:
    root = {**schema, "components": document["components"]}
    return Draft202012Validator(root, format_checker=Draft202012Validator.FORMAT_CHECKER)


def test_every_example_is_valid(document: dict[str, Any]) -> None:
    checked = 0
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            media = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if media and "example" in media:
                errors = list(_resolved(media["schema"], document).iter_errors(media["example"]))
                assert errors == [], f"{method} {path} request example: {errors[0].message}"
                checked += 1
            elif media:
                pytest.fail(f"{method} {path} has a request body without an example")
            for status, response in operation["responses"].items():
                for content in response.get("content", {}).values():
                    if "example" in content:
                        errors = list(
                            _resolved(content["schema"], document).iter_errors(content["example"])
                        )
                        assert errors == [], f"{method} {path} {status}: {errors[0].message}"
                        checked += 1
    assert checked >= 25


def test_request_examples_pass_the_servers_own_check() -> None:
    # The server validates bodies with the same draft-07 validator the engine uses.
    for endpoint in endpoints():
        if endpoint.body is not None:
            assert validate(endpoint.body_example, endpoint.body) == [], endpoint.path
    assert set(REQUESTS) >= {"IntegrationCreate", "BillBatch", "MappingImport"}


def test_the_readme_names_every_route() -> None:
    text = README.read_text(encoding="utf-8")
    section = text.split("## HTTP API (`billbridge serve`)", 1)[1].split("\n## ", 1)[0]
    missing = [
        f"{e.method} {e.path}" for e in endpoints() if f"{e.method} {e.path}`" not in section
        and not re.search(rf"`{e.method} [^`]*`[^|]*`{re.escape(e.method)} {re.escape(e.path)}`", section)
    ]  # fmt: skip
    assert missing == []


@pytest.mark.skipif(
    not (shutil.which("curl") and shutil.which("jq") and shutil.which("bash")),
    reason="the README's examples use bash, curl and jq",
)
def test_the_readme_curl_examples_run_against_a_live_server(sqlite_served: Served) -> None:
    text = README.read_text(encoding="utf-8")
    marker = "<!-- doc-test: elsewhere (tests/e2e/api/test_openapi.py runs these against a live server) -->"
    script = text.split(f"{marker}\n```bash\n", 1)[1]
    script = script.split("```", 1)[0]
    env = {
        **os.environ,
        "BILLBRIDGE_URL": sqlite_served.api.url,
        "BILLBRIDGE_API_KEY": sqlite_served.api.admin_key,
    }
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert done.stdout.rstrip().endswith("3.1.0")
    assert '"wouldSend": 1' in done.stdout
    engine = sqlite_served.engine
    [integration] = engine.integrations.list()
    assert (integration.name, integration.version) == ("Xero GB", 2)
    assert engine.runs.count(bill_id="bill-1") == 1
    assert engine.mappings.count(entity_id="acc-1") == 1
