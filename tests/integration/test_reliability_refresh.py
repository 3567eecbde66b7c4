"""Refresh race: 50 deliveries through one expired token across worker processes, one refresh.

One QuickBooks and one Xero credential, 25 bills each. Their access tokens are expired at the
emulators (any request with them is a 401) and in the database (every worker sees they need
refreshing). Four worker processes then start at the same instant, each delivering its share of
the runs with ``engine.deliver(run_id)`` from four threads, and each asking for a connection to
both credentials directly as well (as a UI listing customers would), so refreshes really race:
across processes on the database lock, across threads inside each process.

Afterwards: every run is COMPLETE and every bill arrived once; each provider answered exactly
one refresh and refused none; and no refresh token was ever presented twice. That last point
matters most for Xero, whose refresh tokens are single-use: the token endpoint is watched and
every ``refresh_token`` presented is recorded.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import attrs
import pytest
from test_reliability_world import (
    PYTHON,
    StartBarrier,
    assert_each_bill_once,
    make_engine,
    prepare,
    read_worker_params,
    run_statuses,
    running_emulators,
    submit,
    wait_for_start,
    worker_engine,
    worker_env,
    worker_params,
)

from billbridge.domain.clock import SystemClock
from billbridge.domain.models import RunStatus
from billbridge.secrets import generate_key
from billbridge.store import atomically
from support import stored_tokens

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]

WORKERS = 4
THREADS = 4
PER_DESTINATION = 25


class TokenWatch:
    """ASGI middleware recording every ``refresh_token`` presented to a token endpoint."""

    def __init__(self, app: ASGIApp, path: str) -> None:
        self.app = app
        self.path = path
        self.presented: list[str] = []
        self._lock = threading.Lock()

    async def __call__(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        body = b""
        while True:
            message = await receive()
            messages.append(message)
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        form = dict(parse_qsl(body.decode("utf-8", errors="replace")))
        if form.get("grant_type") == "refresh_token":
            with self._lock:
                self.presented.append(form.get("refresh_token", ""))
        replay = iter(messages)

        async def replayed() -> Message:
            # The body goes on to the emulator exactly as it came.
            return next(replay, None) or await receive()

        await self.app(scope, replayed, send)


def refresh_worker_main() -> None:
    """A worker process: wait for the start, then deliver its runs and ask for connections."""
    params = read_worker_params()
    engine = worker_engine(params, worker_threads=2)
    try:
        wait_for_start(params["start_port"])

        def connect(credential_id: str) -> None:
            engine.credentials.connection(credential_id)

        with ThreadPoolExecutor(THREADS + 2) as pool:
            pickers = [pool.submit(connect, c) for c in params["credentials"]]
            statuses = list(pool.map(lambda r: engine.deliver(r).status.value, params["runs"]))
            for picker in pickers:
                picker.result()
        # Anything another worker's batch left behind (none expected) is delivered too.
        while engine.next_due_at() is not None:
            engine.deliver_pending()
        print(json.dumps({"statuses": statuses}))
    finally:
        engine.close()


@attrs.frozen
class Watched:
    quickbooks: TokenWatch
    xero: TokenWatch


@pytest.mark.slow
def test_one_refresh_for_fifty_deliveries_across_processes(
    database_url: str, tmp_path: Path
) -> None:
    watches: dict[str, TokenWatch] = {}

    def watch(key: str, path: str) -> Callable[[Any], Any]:
        def wrap(app: Any) -> Any:
            watches[key] = TokenWatch(app, path)
            return watches[key]

        return wrap

    with running_emulators(
        SystemClock(),
        limits=False,
        wrap={
            "quickbooks": watch("quickbooks", "/oauth2/v1/tokens/bearer"),
            "xero": watch("xero", "/connect/token"),
        },
    ) as world:
        key = generate_key()
        engine = make_engine(database_url, world, tmp_path, key)
        try:
            prepared = prepare(engine, world, quickbooks=PER_DESTINATION, xero=PER_DESTINATION)
            assert submit(engine, quickbooks=PER_DESTINATION, xero=PER_DESTINATION) == 50
            first_refresh_tokens = {}
            for name, credential_id in prepared.credentials.items():
                credential = engine.credentials.get(credential_id)
                refresh_token = stored_tokens(engine, credential_id).refresh_token
                assert refresh_token is not None
                first_refresh_tokens[name] = refresh_token.reveal()
                # Expired for the engine (every worker will want to refresh) ...
                expired = attrs.evolve(credential, access_token_expires_at=engine.clock.now())
                atomically(engine.uow, lambda uow, c=expired: uow.credentials.update(c))
            # ... and for the providers: a worker using the old token gets a 401.
            world.quickbooks.oauth.expire_access_tokens()
            world.xero.oauth.expire_access_tokens()

            runs = [r.id for r in engine.runs.list(limit=None)]
            assert len(runs) == 50
            barrier = StartBarrier(WORKERS)
            processes = [
                subprocess.Popen(
                    [PYTHON, "-c", "import test_reliability_refresh as t; t.refresh_worker_main()"],
                    env=worker_env(
                        worker_params(
                            world,
                            database_url,
                            tmp_path,
                            key,
                            start_port=barrier.port,
                            runs=runs[n::WORKERS],
                            credentials=list(prepared.credentials.values()),
                        )
                    ),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                )
                for n in range(WORKERS)
            ]
            barrier.release_when_ready(processes)
            outputs = [p.communicate(timeout=180) for p in processes]
            for process, (out, err) in zip(processes, outputs, strict=True):
                assert process.returncode == 0, err.decode(errors="replace")[-3000:]
                statuses = json.loads(out.decode().strip().splitlines()[-1])["statuses"]
                # STARTED: another process's drain (below) took the run while this one waited
                # longer than a lease for the tenant; it completes there (checked next).
                assert set(statuses) <= {RunStatus.COMPLETE.value, RunStatus.STARTED.value}

            assert run_statuses(engine) == {RunStatus.COMPLETE.value: 50}
            assert_each_bill_once(world, quickbooks=PER_DESTINATION, xero=PER_DESTINATION)
            for name, emulator in (("quickbooks", world.quickbooks), ("xero", world.xero)):
                stats = emulator.oauth.stats
                assert stats["refreshes"] == 1, f"{name}: {stats['refreshes']} refreshes"
                assert stats["refused"] == 0, f"{name}: a refresh was refused"
                presented = Counter(watches[name].presented)
                assert presented == Counter({first_refresh_tokens[name]: 1}), (
                    f"{name}: refresh tokens presented {sorted(presented.values())} times"
                )
            # The rotated refresh token is the one stored now: the spent one is gone for good.
            for name, credential_id in prepared.credentials.items():
                stored = stored_tokens(engine, credential_id).refresh_token
                assert stored is not None and stored.reveal() != first_refresh_tokens[name]
        finally:
            engine.close()
