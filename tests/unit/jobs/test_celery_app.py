"""The Celery application's promises, read from the real application object: messages
acknowledged late and given back when a worker dies, transient errors retried with
backoff, one message at a time per pool process, and redelivery tied to the lease."""

from __future__ import annotations

from pathlib import Path

from sprava.errors import BackendUnavailableError
from sprava.jobs.celery_app import TASK, make_app, queue_name
from sprava.settings import load_settings


def test_the_task_is_acknowledged_late_and_retried_with_backoff(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, {"jobs": "celery", "job_lease_seconds": 100,
                                        "broker_url": "redis://127.0.0.1:1/0"}, environ={})
    app = make_app(settings, "example.org/log")
    try:
        task = app.tasks[TASK]
        assert task.acks_late is True
        assert task.reject_on_worker_lost is True
        assert task.autoretry_for == (BackendUnavailableError,)
        assert task.retry_backoff is True
        assert task.max_retries == 10
        assert app.conf.worker_prefetch_multiplier == 1
        assert app.conf.task_serializer == "json"
        assert app.conf.accept_content == ["json"]  # never unpickle what a broker hands over
        # Redis hands an unacknowledged message out again only once the lease has run out.
        assert app.conf.broker_transport_options["visibility_timeout"] == 160
        assert app.conf.task_default_queue == queue_name("example.org/log")
    finally:
        app.close()


def test_instances_sharing_a_broker_have_queues_of_their_own() -> None:
    assert queue_name("a.example/log") != queue_name("b.example/log")
    assert queue_name("a.example/log") == queue_name("a.example/log")
