"""A read-only database: read commands work, writes fail with one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import make_url

from billbridge.cli import main


@pytest.fixture
def read_only_url(database_url: str, tmp_path: Path) -> str:
    """The test's (migrated) database, opened read-only."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return f"sqlite:///file:{url.database}?mode=ro&uri=true"
    return url.update_query_dict(
        {"options": "-c default_transaction_read_only=on"}
    ).render_as_string(hide_password=False)


def run(url: str, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["--database-url", url, *args])
    return result.exit_code, result.stdout, result.stderr


def test_reads_work_and_writes_say_the_database_is_read_only(read_only_url: str) -> None:
    code, out, _ = run(read_only_url, "runs", "list", "--json")
    assert (code, out.strip()) == (0, "[]")
    code, _, err = run(read_only_url, "integrations", "list")
    assert code == 0
    code, _, err = run(
        read_only_url, "mappings", "create", "--entity", "Account", "--entity-id", "a1",
        "--table", "Contact", "--external-id", "c1",
    )  # fmt: skip
    assert code == 1
    (line,) = err.strip().splitlines()
    assert "is read-only: billbridge can show what it holds but not save anything" in line
