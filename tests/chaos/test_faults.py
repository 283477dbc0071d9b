"""Fault injection at campaign scale: 2,000 recipients through real Celery workers and the
real twilio SDK to the fake Twilio, while a worker is SIGKILLed, Redis or PostgreSQL goes
away, Twilio misbehaves, two beats race, or members text STOP. Each scenario ends with the
invariant (see ``support.check_invariant``) and saves its line of the report, which the
test run prints at its end (the root conftest's terminal summary), under
``var/test-artifacts/chaos/``.

Every scenario uses a private Redis on a free port (the shared one on 6379 is never
stopped, flushed or purged), and the PostgreSQL restart a private server (``postgres.py``).
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from campaigns.models import Campaign
from campaigns.services import launch_campaign, schedule_campaign
from campaigns.tests.factories import CampaignFactory
from delivery.api.models import ApiKey
from delivery.models import Batch, Message
from members.models import OptOut
from members.tests.factories import us_mobile
from tests.chaos.postgres import PrivatePostgres, pointed_at_database
from tests.chaos.report import ScenarioResult, save_result
from tests.chaos.support import (
    Beat,
    PrivateRedis,
    Workers,
    audience,
    check_invariant,
    drive,
    free_port,
    nothing_left_to_send,
    pointed_at_redis,
    text_us,
)
from tests.test_campaign_delivery import worker_environment  # noqa: F401 - a fixture

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
]
Status = Message.Status
SIZE = 2_000
FAULT_SECONDS = 30  # scenario 4: "a minute" of a misbehaving Twilio, capped to the campaign
BODY = "Chaos drill: the community garden opens Saturday at 10."


@dataclass
class Chaos:
    fake: object
    redis: PrivateRedis
    environment: dict[str, str]
    tmp: Path
    result: ScenarioResult
    started: float

    def campaign(self, **fields) -> Campaign:
        return CampaignFactory(body=BODY, respect_quiet_hours=False, **fields)

    def accepted(self) -> int:
        return sum(1 for r in self.fake.requests if r.method == "POST" and r.status == 201)


@pytest.fixture
def chaos(request, worker_environment, fake_twilio, settings, tmp_path):  # noqa: F811
    # Status callbacks are covered by tests/test_campaign_delivery.py; off here, the
    # rows end "accepted" and the fake's log stays the proof.
    fake_twilio.set_rules(callbacks=False)
    settings.SMS_SENDING_LEASE_SECONDS = 3
    settings.SMS_IDLE_BATCH_SECONDS = 2
    with (
        PrivateRedis(tmp_path) as redis_server,
        pointed_at_redis(redis_server.url, settings) as redis_environment,
    ):
        # A worker claims about 2 s of the sender's rate per chunk, and each of its task
        # chains claims its own: with the 3 s lease, chunks that big could still wait in
        # a live worker when the lease ends, be requeued by the sweeper and go out twice
        # (see the report). Small chunks keep a live worker's hold well inside the lease.
        environment = {
            **worker_environment,
            **redis_environment,
            "SMS_SEND_CHUNK_SIZE": "100",
        }
        result = ScenarioResult(name=request.node.name.removeprefix("test_"))
        started = time.monotonic()
        yield Chaos(fake_twilio, redis_server, environment, tmp_path, result, started)
        result.wall_seconds = time.monotonic() - started
        save_result(result)


def _until_sent(chaos: Chaos, count: int, what: str) -> None:
    drive(lambda: chaos.accepted() >= count, timeout=90, what=what)


def test_worker_sigkilled_three_times(chaos):
    people = audience(SIZE, opted_out=0, suppressed=0, outside=0)
    chaos.environment["SMS_RATE_LIMIT_PER_SECOND"] = "250"
    rng = random.Random(20261202)
    points = sorted(rng.sample(range(150, 1500), 3))
    campaign = chaos.campaign()
    with Workers(chaos.tmp, chaos.environment) as workers:
        worker = workers.start()
        assert launch_campaign(campaign_id=campaign.pk)
        for point in points:
            _until_sent(chaos, point, f"{point} messages before a kill")
            time.sleep(rng.uniform(0, 0.5))  # a random moment of the send loop
            worker.kill()
            worker = workers.start(purge=False)
        fault_ended = timezone.now()
        drive(nothing_left_to_send, timeout=120, what="recovery after three kills")
    campaign.refresh_from_db()
    chaos.result.notes.append(f"killed after {points} accepted")
    check_invariant(
        chaos.result,
        chaos.fake,
        batch_id=campaign.batch_id,
        body=BODY,
        eligible=people["eligible"],
        fault_ended_at=fault_ended,
    )


def test_redis_down_30s_and_the_api_still_answers_202(chaos, client):
    people = audience(SIZE, opted_out=0, suppressed=0, outside=0)
    chaos.environment["SMS_RATE_LIMIT_PER_SECOND"] = "250"
    _, key = ApiKey.objects.create_key(name="chaos", scopes=["send"])
    api_phones = [us_mobile(SIZE + index) for index in range(3)]
    campaign = chaos.campaign()
    answers = []
    with Workers(chaos.tmp, chaos.environment) as workers:
        workers.start()
        assert launch_campaign(campaign_id=campaign.pk)
        _until_sent(chaos, 500, "sending to start")
        chaos.redis.stop()
        outage_started = time.monotonic()
        for phone in api_phones:
            response = client.post(
                "/api/v1/messages",
                data=json.dumps({"to": phone, "body": "API text during the Redis outage"}),
                content_type="application/json",
                headers={"Authorization": f"Api-Key {key}"},
            )
            answers.append((response.status_code, response.content[:300]))
        drive(
            lambda: time.monotonic() - outage_started >= 30,
            timeout=40,
            what="the 30 s outage",
        )
        chaos.redis.start()  # same port, empty: what a restarted Redis without AOF holds
        fault_ended = timezone.now()
        # No restart: the worker that was sending when Redis went away must carry on by
        # itself (its round ends with the error; the sweeper re-enqueues what is left).
        drive(nothing_left_to_send, timeout=120, what="recovery after the Redis outage")
    campaign.refresh_from_db()
    chaos.result.notes.append(f"API answers during outage {[code for code, _ in answers]}")
    check_invariant(
        chaos.result,
        chaos.fake,
        batch_id=campaign.batch_id,
        body=BODY,
        eligible=people["eligible"],
        fault_ended_at=fault_ended,
        extra_expected=dict.fromkeys(api_phones, 1),
    )
    assert [code for code, _ in answers] == [202] * len(api_phones), answers


def test_postgresql_restarted_mid_campaign(chaos):
    # A server of the scenario's own (the shared one is never stopped), restarted as a
    # crash would: stopped "immediate", down 5 s, started with crash recovery.
    with (
        PrivatePostgres(free_port()) as server,
        pointed_at_database(server) as database_environment,
    ):
        chaos.environment.update(database_environment)
        people = audience(SIZE, opted_out=0, suppressed=0, outside=0)
        chaos.environment["SMS_RATE_LIMIT_PER_SECOND"] = "250"
        campaign = chaos.campaign()
        with Workers(chaos.tmp, chaos.environment) as workers:
            workers.start()
            assert launch_campaign(campaign_id=campaign.pk)
            _until_sent(chaos, 600, "sending to start")
            server.restart(down_seconds=5)
            connection.close()  # ours was cut with the rest
            fault_ended = timezone.now()
            drive(nothing_left_to_send, timeout=120, what="recovery after the restart")
        campaign.refresh_from_db()
        chaos.result.notes.append("server stopped (immediate), down 5 s, started")
        check_invariant(
            chaos.result,
            chaos.fake,
            batch_id=campaign.batch_id,
            body=BODY,
            eligible=people["eligible"],
            fault_ended_at=fault_ended,
        )


def test_twilio_30_percent_500_429_and_5s_stalls(chaos, settings):
    people = audience(SIZE, opted_out=0, suppressed=0, outside=0)
    chaos.environment["SMS_RATE_LIMIT_PER_SECOND"] = "400"
    # A message may meet many errors in a row at 30 %: room enough that none runs out.
    chaos.environment["SMS_MAX_ATTEMPTS"] = "30"
    # A live worker holds a message through its in-round tries: up to three requests that
    # may each stall 5 s, plus backoff. The lease must outlast that or the sweeper requeues
    # a message that is still on its way (a duplicate); no worker dies here.
    chaos.environment["SMS_SENDING_LEASE_SECONDS"] = "40"
    settings.SMS_SENDING_LEASE_SECONDS = 40
    chaos.fake.set_rules(
        rate_limit_fraction=0.15,
        server_error_fraction=0.18,  # of what is left after the 429s: 15 % more
        stall_fraction=0.005,
        stall_seconds=5,
    )
    campaign = chaos.campaign()
    with Workers(chaos.tmp, chaos.environment) as workers:
        workers.start()
        assert launch_campaign(campaign_id=campaign.pk)
        campaign.refresh_from_db()  # its batch
        fault_started = time.monotonic()
        # The fault lasts while the campaign sends (at most a minute), then Twilio heals.
        drive(
            lambda: (
                Message.objects.filter(batch_id=campaign.batch_id, status=Status.ACCEPTED).count()
                >= SIZE * 0.95
                or time.monotonic() - fault_started > FAULT_SECONDS
            ),
            timeout=FAULT_SECONDS + 10,
            what="the campaign under faults",
            due_now=True,
        )
        chaos.fake.set_rules(rate_limit_fraction=0, server_error_fraction=0, stall_fraction=0)
        fault_ended = timezone.now()
        healed_at = chaos.accepted()
        drive(nothing_left_to_send, timeout=120, what="the rest after Twilio healed", due_now=True)
    campaign.refresh_from_db()
    injected = sum(1 for r in chaos.fake.requests if r.status in (429, 500))
    chaos.result.notes.append(
        f"{injected} 429/500 injected; {healed_at} accepted when Twilio healed after "
        f"{(fault_ended - campaign.launched_at).total_seconds():.0f} s"
    )
    check_invariant(
        chaos.result,
        chaos.fake,
        batch_id=campaign.batch_id,
        body=BODY,
        eligible=people["eligible"],
        fault_ended_at=fault_ended,
    )
    assert injected > 0.2 * SIZE


def test_two_workers_two_beats_one_launch(chaos):
    people = audience(SIZE, opted_out=0, suppressed=0, outside=0)
    every_second, _ = IntervalSchedule.objects.get_or_create(
        every=1, period=IntervalSchedule.SECONDS
    )
    PeriodicTask.objects.create(
        name="chaos-launch-due-campaigns",
        task="campaigns.launch_due_campaigns",
        interval=every_second,
    )
    campaign = chaos.campaign()
    schedule_campaign(campaign=campaign, send_at=timezone.now() + timedelta(seconds=6))
    beats = []
    with Workers(chaos.tmp, chaos.environment) as workers:
        workers.start()
        workers.start(purge=False)
        beats = [Beat(chaos.tmp, chaos.environment) for _ in range(2)]
        try:
            drive(
                lambda: Campaign.objects.filter(pk=campaign.pk, batch__isnull=False).exists(),
                timeout=60,
                what="beat to launch the campaign",
            )
            fault_ended = timezone.now()
            drive(nothing_left_to_send, timeout=120, what="the campaign")
            time.sleep(2)  # both beats tick again: a second launch would show now
        finally:
            for beat in beats:
                beat.stop()
        worker_logs = workers.logs()
    campaign.refresh_from_db()
    published = [beat.log().count("chaos-launch-due-campaigns") for beat in beats]
    chaos.result.notes.append(f"launch ticks published per beat {published}")
    assert all(published), [beat.log()[-2000:] for beat in beats]
    assert Batch.objects.filter(kind=Batch.Kind.CAMPAIGN).count() == 1
    assert campaign.state in (Campaign.State.SENDING, Campaign.State.DONE)
    assert "launch_due_campaigns" in worker_logs
    check_invariant(
        chaos.result,
        chaos.fake,
        batch_id=campaign.batch_id,
        body=BODY,
        eligible=people["eligible"],
        fault_ended_at=fault_ended,
    )
    chaos.result.recover_seconds = None  # no fault to recover from: the launch race only


def test_stop_from_five_percent_mid_campaign(chaos, client, settings):
    settings.ORGANIZATION_NAME = "Garden Club"
    settings.TWILIO_ADVANCED_OPT_OUT = False
    people = audience(SIZE, opted_out=0, suppressed=0, outside=0)
    chaos.environment["SMS_RATE_LIMIT_PER_SECOND"] = "250"
    stoppers = random.Random(6).sample(people["eligible"], SIZE // 20)
    campaign = chaos.campaign()
    processed_at = {}
    with Workers(chaos.tmp, chaos.environment) as workers:
        workers.start()
        assert launch_campaign(campaign_id=campaign.pk)
        _until_sent(chaos, 300, "sending to start")
        for index, phone in enumerate(stoppers):
            fields = {
                "MessageSid": f"SM{index:032d}",
                "From": phone,
                "To": campaign.sender,
                "Body": "STOP",
                "NumMedia": "0",
            }
            text_us(client, chaos.fake.auth_token, settings.PUBLIC_BASE_URL, fields)
            processed_at[phone] = timezone.now()
        fault_ended = timezone.now()
        sent_at_last_stop = chaos.accepted()
        drive(nothing_left_to_send, timeout=120, what="the campaign and the STOP replies")
    campaign.refresh_from_db()
    opted_out_at = dict(
        OptOut.objects.filter(phone__in=stoppers).values_list("phone", "created_at")
    )
    assert set(opted_out_at) == set(stoppers)
    canceled = Message.objects.filter(batch_id=campaign.batch_id, status=Status.CANCELED)
    chaos.result.notes.append(
        f"{len(stoppers)} STOPs; {canceled.count()} campaign messages canceled; "
        f"{sent_at_last_stop} accepted when the last STOP was processed"
    )
    check_invariant(
        chaos.result,
        chaos.fake,
        batch_id=campaign.batch_id,
        body=BODY,
        eligible=people["eligible"],
        opted_out_at=opted_out_at,
        processed_at=processed_at,
        fault_ended_at=fault_ended,
    )
    assert sent_at_last_stop < SIZE, "the campaign was over before the STOPs: too fast"
    assert canceled.exists()
    replies = Message.objects.filter(batch__kind=Batch.Kind.REPLY)
    assert sorted(replies.values_list("phone", flat=True)) == sorted(stoppers)
    assert set(replies.values_list("status", flat=True)) <= {Status.ACCEPTED}
