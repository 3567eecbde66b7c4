"""``billbridge serve`` and ``billbridge api-keys``: the click commands, as the CLI will run them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from click.testing import CliRunner

from billbridge.cli import main


def run(*args: str) -> tuple[int, str, str]:
    """``billbridge api-keys ARGS`` (the database URL given as the last two arguments)."""
    *command, option, url = args
    assert option == "--database-url"
    result = CliRunner().invoke(main, ["--database-url", url, "api-keys", *command])
    return result.exit_code, result.stdout, result.stderr


def test_keys_are_created_shown_once_listed_and_revoked(sqlite_url: str) -> None:
    code, out, err = run(
        "create", "--name", "ops", "--scope", "admin", "--database-url", sqlite_url
    )
    assert code == 0, err
    key = out.strip()
    assert key.startswith("bbk_") and len(key) > 40
    assert "store it now, it is not shown again" in err
    code, out, _ = run("list", "--database-url", sqlite_url)
    assert code == 0 and key[:12] in out and key not in out and "admin" in out
    key_id = out.split()[0]
    code, _, err = run("revoke", key_id, "--database-url", sqlite_url)
    assert (code, err.strip()) == (0, f"revoked API key 'ops' ({key_id})")
    code, out, _ = run("list", "--json", "--database-url", sqlite_url)
    assert '"active": false' in out


def test_command_errors_are_one_line_and_exit_1(sqlite_url: str) -> None:
    code, out, err = run("revoke", "nope", "--database-url", sqlite_url)
    assert (code, out, err) == (1, "", "error: API key nope not found\n")
    code, out, err = run("create", "--name", " ", "--database-url", sqlite_url)
    assert (code, err) == (1, "error: API key refused\n  /name: is required\n")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_serve_starts_the_api_and_the_worker_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "BILLBRIDGE_HOME": str(tmp_path)}
    code = "from billbridge.cli import main; main()"
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            code,
            "serve",
            "--port",
            str(port),
            "--poll",
            "0.2",
            "--log-level",
            "warning",
        ],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, "serve did not start"
            time.sleep(0.1)
        ready = httpx.get(f"{base}/readyz").json()
        assert ready["ready"] is True and ready["migration"] == ready["expectedMigration"]
        assert httpx.get(f"{base}/api/integrations").status_code == 401
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "background: delivery, webhooks" in err
    assert err.rstrip().endswith("billbridge serve stopped")
