"""Security on the real stack: the worker talks to Kafka over SASL, to Redis as an ACL user and
to Slack with a bot token, with credentials only in its environment, and no secret appears in
its log."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import yaml
from kafka import KafkaProducer
from kafka.errors import KafkaError

from alerts.notify.slack_message import API_URL_ENV
from socialpulse.app.settings import Settings
from socialpulse.core.connections import ConnectionSettingsError, kafka_security
from socialpulse.core.paths import state_dir
from socialpulse.devtools.stack.kafka import SASL_USER, sasl_password
from tests.conftest import start_worker, stop_worker, write_config
from tests.e2e.helpers.events import mention
from tests.e2e.helpers.reading import kpi, stub_messages, wait_until


def test_connection_settings_name_the_variable_and_the_fix() -> None:
    assert kafka_security({}) == {}
    with pytest.raises(ConnectionSettingsError) as caught:
        kafka_security({"SOCIALPULSE_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"})
    assert str(caught.value) == (
        "SASL_PLAINTEXT needs SOCIALPULSE_KAFKA_USERNAME and SOCIALPULSE_KAFKA_PASSWORD in the "
        "environment"
    )
    with pytest.raises(ConnectionSettingsError) as caught:
        kafka_security({"SOCIALPULSE_KAFKA_SECURITY_PROTOCOL": "TLS"})
    assert str(caught.value) == (
        "SOCIALPULSE_KAFKA_SECURITY_PROTOCOL='TLS': use one of PLAINTEXT, SSL, SASL_PLAINTEXT, "
        "SASL_SSL"
    )
    options = kafka_security(
        {
            "SOCIALPULSE_KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
            "SOCIALPULSE_KAFKA_SASL_MECHANISM": "scram-sha-512",
            "SOCIALPULSE_KAFKA_USERNAME": "u",
            "SOCIALPULSE_KAFKA_PASSWORD": "p",
        }
    )
    assert {k: v for k, v in options.items() if k != "ssl_context"} == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "u",
        "sasl_plain_password": "p",
    }
    assert options["ssl_context"] is not None


@pytest.fixture
def redis_user(stack: Settings) -> Iterator[tuple[str, str]]:
    """A Redis ACL user with its own password, removed afterwards."""
    admin = redis.Redis.from_url(stack.pipeline.redis.url)
    name, password = f"sp-test-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    admin.acl_setuser(
        name,
        enabled=True,
        passwords=[f"+{password}"],
        keys=["*"],
        channels=["*"],
        commands=["+@all"],
    )
    try:
        yield name, password
    finally:
        admin.acl_deluser(name)


def test_worker_over_sasl_and_redis_acl_with_secrets_only_in_the_environment(
    stack: Settings, tmp_path: Path, redis_user: tuple[str, str]
) -> None:
    kafka_password = sasl_password(state_dir() / "kafka")
    slack_token = f"xoxb-{uuid.uuid4().hex}"
    signing_secret = uuid.uuid4().hex
    sasl_port = stack.pipeline.kafka.first_port + 2
    folder = write_config(tmp_path / "config", uuid.uuid4().hex[:10])
    pipeline = yaml.safe_load((folder / "socialpulse.yaml").read_text())
    pipeline["kafka"]["bootstrap_servers"] = f"127.0.0.1:{sasl_port}"
    (folder / "socialpulse.yaml").write_text(yaml.safe_dump(pipeline))
    environ = {
        "SOCIALPULSE_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "SOCIALPULSE_KAFKA_USERNAME": SASL_USER,
        "SOCIALPULSE_KAFKA_PASSWORD": kafka_password,
        "SOCIALPULSE_REDIS_USERNAME": redis_user[0],
        "SOCIALPULSE_REDIS_PASSWORD": redis_user[1],
        # A Slack token and signing secret as a real deployment has them; the API URL points
        # the real client code at the stub, which notes that a token other than its own came.
        "SLACK_BOT_TOKEN": slack_token,
        "SLACK_SIGNING_SECRET": signing_secret,
        API_URL_ENV: stack.alerts.slack.stub_url,
    }
    worker = start_worker(folder, tmp_path / "worker.log", environ)
    try:
        settings = worker.settings
        producer = KafkaProducer(
            bootstrap_servers=f"127.0.0.1:{sasl_port}", acks="all", **kafka_security(environ)
        )
        for _ in range(3):
            event = mention("acme", "x", "over sasl", "positive")
            producer.send(
                settings.pipeline.topics.mentions, key=b"acme", value=json.dumps(event).encode()
            )
        for _ in range(6):  # over the threshold rule's 5: one Slack post, with the token
            event = mention("acme", "x", "over sasl, and angry", "negative")
            producer.send(
                settings.pipeline.topics.mentions, key=b"acme", value=json.dumps(event).encode()
            )
        producer.flush(30)
        producer.close()
        wait_until(lambda: kpi(worker.metrics_url, "mentions", "acme", "x") == 9, what="counts")
        [post] = wait_until(
            lambda: [m for m in stub_messages(settings) if m["method"] == "chat.postMessage"],
            what="the alert posted with the Slack token",
        )
        assert post["token"] == "other"  # the configured token, not the stub's own
        assert post["text"].startswith("[CRITICAL] Acme Coffee (acme) on x: mentions_negative 6")
        # The counts went through the ACL user: Redis saw its commands.
        admin = redis.Redis.from_url(stack.pipeline.redis.url, decode_responses=True)
        assert any(c.get("user") == redis_user[0] for c in admin.client_list())

        # A wrong password is refused by the broker: nothing is produced.
        wrong = {**environ, "SOCIALPULSE_KAFKA_PASSWORD": "wrong"}
        with pytest.raises(KafkaError):
            KafkaProducer(
                bootstrap_servers=f"127.0.0.1:{sasl_port}",
                max_block_ms=5000,
                **kafka_security(wrong),
            ).send(settings.pipeline.topics.mentions, b"x").get(10)
    finally:
        stop_worker(worker)
    log = worker.log_text()
    assert "Ready" in log
    for secret in (kafka_password, redis_user[1], slack_token, signing_secret):
        assert secret not in log
