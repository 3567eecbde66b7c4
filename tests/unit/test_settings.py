"""Per-destination settings from the environment: one variable per field, by the field's name."""

from __future__ import annotations

import attrs
import pytest

from billbridge.domain.models import Secret
from billbridge.settings import DestinationSettings, Settings


def test_every_field_is_read_from_the_variable_of_its_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Text fields take any text; numbers are given as numbers.
    numbers = {"plugin_timeout": ("12.5", 12.5)}
    for field in attrs.fields(DestinationSettings):
        text = numbers.get(field.name, (f"value of {field.name}",))[0]
        monkeypatch.setenv(f"BILLBRIDGE_MY_DEST_{field.name.upper()}", text)
    read = DestinationSettings.from_env("my_dest")
    for field in attrs.fields(DestinationSettings):
        value = getattr(read, field.name)
        shown = value.reveal() if isinstance(value, Secret) else value
        expected = numbers[field.name][1] if field.name in numbers else f"value of {field.name}"
        assert shown == expected, field.name


def test_the_api_root_is_read_under_its_documented_and_its_older_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BILLBRIDGE_XERO_API_URL", "http://127.0.0.1:9001/old")
    assert Settings().destination("xero").api_base_url == "http://127.0.0.1:9001/old"
    monkeypatch.setenv("BILLBRIDGE_XERO_API_BASE_URL", "http://127.0.0.1:9001/new")
    assert Settings().destination("xero").api_base_url == "http://127.0.0.1:9001/new"


def test_explicit_settings_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BILLBRIDGE_XERO_TOKEN_URL", "http://127.0.0.1:9001/token")
    monkeypatch.setenv("BILLBRIDGE_XERO_AUTHORIZE_URL", "http://127.0.0.1:9001/authorize")
    settings = Settings(
        destinations={"xero": DestinationSettings(token_url="http://127.0.0.1:9002/token")}
    )
    resolved = settings.destination("xero")
    assert resolved.token_url == "http://127.0.0.1:9002/token"
    assert resolved.authorize_url == "http://127.0.0.1:9001/authorize"
