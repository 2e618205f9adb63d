"""The farm's Celery app: one task, ``director.render_shot`` (an API-format workflow plus its inputs),
run by workers that are each bound to one ComfyUI server.

Delivery is at least once: ``acks_late`` acknowledges a shot only when it has ended, so a shot whose
worker dies mid-shot stays in Redis and, after the broker's visibility timeout, goes to another worker,
which queues it on its own ComfyUI (``reject_on_worker_lost`` requeues at once where a prefork pool's
child dies; ``director farm worker`` runs the shot in the worker process itself). Paying once is not the queue's
job: the shared job ledger (DIRECTOR_LEDGER_URL) makes the second server follow or reuse the first
server's Luma job instead of creating another.
"""

from __future__ import annotations

import os
from typing import Any

BROKER_ENV = "DIRECTOR_FARM_BROKER"
COMFY_ENV = "DIRECTOR_FARM_COMFY"
DEFAULT_BROKER = "redis://127.0.0.1:6379/0"
QUEUE = "director-shots"
TASK = "director.render_shot"
# A shot not acknowledged this long after a worker took it goes to another worker (its worker died).
# A shot still running when it passes is delivered twice: the second server waits for the first one's
# Luma job in the shared ledger and bills nothing; it only costs that server's time.
VISIBILITY_TIMEOUT_S = 3600


def broker_url(explicit: str | None = None) -> str:
    return (explicit or os.environ.get(BROKER_ENV, "") or DEFAULT_BROKER).strip()


def make_app(broker: str | None = None, *, visibility_timeout_s: float | None = None):
    """The Celery app on ``broker`` (Redis); results go to the same Redis."""
    try:
        from celery import Celery
    except ImportError:
        from .comfy import FarmError

        raise FarmError('the farm needs Celery with Redis: pip install "comfyui-director[farm]" '
                        '(celery[redis], psycopg[binary]).', field="farm") from None
    url = broker_url(broker)
    vt = float(visibility_timeout_s or os.environ.get("DIRECTOR_FARM_VISIBILITY_S") or VISIBILITY_TIMEOUT_S)
    app = Celery("director-farm", broker=url, backend=url)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,  # a worker holds one shot at a time: the rest wait for free servers
        task_default_queue=QUEUE,
        task_serializer="json", result_serializer="json", accept_content=["json"],
        # workers sweep for shots of dead workers every interval (the default sweep is 100 s)
        broker_transport_options={"visibility_timeout": vt, "unacked_restore_throttle": 1,
                                  "unacked_restore_interval": max(1.0, min(60.0, vt / 4))},
        result_backend_transport_options={"visibility_timeout": vt},
        result_expires=7 * 24 * 3600,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        task_track_started=False,
    )

    @app.task(name=TASK, bind=True, acks_late=True, reject_on_worker_lost=True)
    def render_shot(self, workflow: dict[str, Any], inputs: dict[str, Any] | None = None,
                    shot: str = "", timeout_s: float = 6 * 3600.0) -> dict[str, Any]:
        """Run one shot on this worker's ComfyUI; returns its outputs and the paid job ids it used."""
        from .comfy import apply_inputs, run_shot

        comfy = os.environ.get(COMFY_ENV, "")
        if not comfy:
            raise RuntimeError(f"this worker is bound to no ComfyUI ({COMFY_ENV}); start it with "
                               "'director farm worker --comfy URL'")
        run = run_shot(comfy, apply_inputs(workflow, inputs), timeout_s=timeout_s)
        out = run.as_dict()
        out.update(shot=shot, worker=self.request.hostname, delivery=int(bool(self.request.delivery_info.get(
            "redelivered"))))
        return out

    return app
