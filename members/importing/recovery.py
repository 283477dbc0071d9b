"""Import jobs whose worker vanished: queued again, never left "importing" for ever.

A worker killed mid-import (or a task message lost with the broker) leaves its job
``uploaded``, ``validating``, ``queued`` or ``importing`` with a heartbeat that stops. An
import commits in one transaction at its end, so a job that died wrote no member: running
it again from the start is safe. Beat calls :func:`resume_stale_import_jobs` every minute.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from members.models import ImportJob

logger = logging.getLogger(__name__)

Status = ImportJob.Status
# What each interrupted state goes back to: checking starts over, importing is queued.
_RESTART_AS = {
    Status.UPLOADED: Status.UPLOADED,
    Status.VALIDATING: Status.UPLOADED,
    Status.QUEUED: Status.QUEUED,
    Status.IMPORTING: Status.QUEUED,
}


def resume_stale_import_jobs(*, now: datetime | None = None) -> list[int]:
    """Queue again the jobs without a sign of life for IMPORT_STALE_SECONDS; their ids.

    Each is taken with a conditional UPDATE (still in its state, still stale) that also
    renews its heartbeat, so two beats never queue one job twice.
    """
    from members.tasks import run_import_job, validate_import_job  # tasks import services

    now = now or timezone.now()
    stale = _stale_since(now - timedelta(seconds=settings.IMPORT_STALE_SECONDS))
    resumed = []
    for job_id, status in ImportJob.objects.filter(stale, status__in=list(_RESTART_AS)).values_list(
        "pk", "status"
    ):
        restart_as = _RESTART_AS[status]
        with transaction.atomic():
            if not ImportJob.objects.filter(stale, pk=job_id, status=status).update(
                status=restart_as, heartbeat_at=now
            ):
                continue
            task = run_import_job if restart_as == Status.QUEUED else validate_import_job
            transaction.on_commit(partial(task.delay, job_id))
        logger.warning(
            "Member import job %s was %s with no sign of life for %s s: queued again",
            job_id,
            status,
            settings.IMPORT_STALE_SECONDS,
        )
        resumed.append(job_id)
    return resumed


def _stale_since(moment: datetime) -> Q:
    # Jobs from before heartbeats were kept have none: their creation time stands in.
    return Q(heartbeat_at__lt=moment) | Q(heartbeat_at__isnull=True, created_at__lt=moment)
