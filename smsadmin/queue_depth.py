"""The queue depth AWS autoscales the workers on: pending messages, sent to CloudWatch.

Beat runs ``smsadmin.publish_queue_depth`` every minute; with
``QUEUE_DEPTH_METRIC_NAMESPACE`` unset (everywhere but AWS) it does nothing.
"""

from __future__ import annotations

import logging

from django.conf import settings

from smsadmin.metrics.collectors import count_pending_capped

logger = logging.getLogger(__name__)


def publish(*, client: object | None = None) -> int | None:
    """Send the number of pending messages; return it, or None when switched off."""
    namespace = settings.QUEUE_DEPTH_METRIC_NAMESPACE
    if not namespace:
        return None
    depth = count_pending_capped()
    if client is None:
        import boto3

        client = boto3.client("cloudwatch")
    client.put_metric_data(  # type: ignore[attr-defined]
        Namespace=namespace,
        MetricData=[
            {
                "MetricName": settings.QUEUE_DEPTH_METRIC_NAME,
                "Dimensions": [{"Name": "Queue", "Value": settings.CELERY_TASK_DEFAULT_QUEUE}],
                "Value": float(depth),
                "Unit": "Count",
            }
        ],
    )
    logger.info("Queue depth %d sent to CloudWatch %s", depth, namespace)
    return depth
