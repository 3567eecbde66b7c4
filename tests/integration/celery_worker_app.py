"""The Celery app that ``test_celery_workers.py`` runs real workers with.

``celery -A celery_worker_app worker`` imports it in each worker process. It is wired as the
README shows a platform would wire its own app (``install`` and ``beat_schedule``), on the broker
and queue the test chose, with the engine the reliability tests' workers use (the emulators'
endpoints, the test's database and secret key: ``test_reliability_world.worker_params``), with
the engine ``settings`` and ``max_runs`` the test asks for.
"""

from __future__ import annotations

from celery import Celery
from test_reliability_world import read_worker_params, worker_engine

from billbridge.contrib.celery import beat_schedule, install

params = read_worker_params()

app = Celery("billbridge-celery-tests", broker=params["broker"], set_as_current=False)
app.conf.update(
    # A queue of this test run's own, and no broadcast traffic: other runs may share the broker.
    task_default_queue=params["queue"],
    worker_enable_remote_control=False,
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
    # Short intervals: the test waits for every run to complete.
    beat_schedule=beat_schedule(delivery=0.5, statuses=5.0, webhooks=2.0),
)
tasks = install(
    app,
    lambda: worker_engine(params, **params.get("settings", {})),
    max_runs=params.get("max_runs"),
)
