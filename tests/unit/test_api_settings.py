"""ApiSettings.from_env: unset variables keep the defaults (``billbridge serve`` reads it)."""

from __future__ import annotations

import pytest

from billbridge.api.settings import ApiSettings


def test_unset_variables_keep_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MAX_BODY_BYTES", "PUBLIC_URL", "CORS_ORIGINS"):
        monkeypatch.delenv(f"BILLBRIDGE_API_{name}", raising=False)
    settings = ApiSettings.from_env()
    assert settings == ApiSettings()
    assert settings.max_body_bytes == 5 * 1024 * 1024


def test_set_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BILLBRIDGE_API_MAX_BODY_BYTES", "1024")
    monkeypatch.setenv("BILLBRIDGE_API_PUBLIC_URL", "https://billing.example.com/")
    monkeypatch.setenv("BILLBRIDGE_API_CORS_ORIGINS", "https://a.example, https://b.example/")
    settings = ApiSettings.from_env()
    assert settings.max_body_bytes == 1024
    assert settings.public_url == "https://billing.example.com"
    assert settings.cors_origins == ("https://a.example", "https://b.example")
