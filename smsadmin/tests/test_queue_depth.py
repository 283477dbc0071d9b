"""The queue depth for AWS autoscaling: pending messages, to CloudWatch's wire format."""

from __future__ import annotations

import boto3
import pytest
from moto.server import ThreadedMotoServer

from delivery.models import Message
from delivery.tests.factories import MessageFactory
from smsadmin.queue_depth import publish

pytestmark = pytest.mark.django_db


def test_nothing_is_published_unless_a_namespace_is_set(settings):
    settings.QUEUE_DEPTH_METRIC_NAMESPACE = ""

    assert publish() is None


def test_the_pending_messages_reach_cloudwatch_with_the_queue_as_dimension(settings):
    settings.QUEUE_DEPTH_METRIC_NAMESPACE = "SMSAdmin/Celery"
    settings.CELERY_TASK_DEFAULT_QUEUE = "smsadmin"
    MessageFactory.create_batch(3)
    MessageFactory(status=Message.Status.DELIVERED)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        client = boto3.client(
            "cloudwatch",
            region_name="eu-west-1",
            endpoint_url=f"http://{host}:{port}",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

        assert publish(client=client) == 3

        (metric,) = client.list_metrics(Namespace="SMSAdmin/Celery")["Metrics"]
        assert metric["MetricName"] == "QueueDepth"
        assert metric["Dimensions"] == [{"Name": "Queue", "Value": "smsadmin"}]
    finally:
        server.stop()
