"""docker-compose.yml, the Prometheus config and the Grafana provisioning agree with the code."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import yaml

from socialpulse.settings import load_settings
from socialpulse.stack.kafka import KAFKA_VERSION
from streams.counters import ALL_COUNTERS
from streams.metrics import metric_name

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_every_service_with_the_pinned_kafka() -> None:
    services = COMPOSE["services"]
    assert set(services) == {
        "kafka",
        "redis",
        "prometheus",
        "grafana",
        "slack-stub",
        "worker",
        "simulator",
    }
    assert services["kafka"]["image"] == f"apache/kafka:{KAFKA_VERSION}"
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    for name in ("worker", "simulator", "slack-stub"):
        assert services[name]["build"] == "."
    assert (ROOT / "Dockerfile").is_file()


def test_compose_ports_match_the_config_and_bind_to_loopback() -> None:
    settings = load_settings(ROOT / "config", {})
    expected = {
        "kafka": settings.pipeline.kafka.first_port,
        "redis": settings.pipeline.redis.port,
        "prometheus": settings.pipeline.prometheus.port,
        "grafana": 3000,
        "slack-stub": settings.alerts.slack.stub_port,
        "worker": settings.pipeline.worker.metrics_port,
    }
    for name, port in expected.items():
        assert COMPOSE["services"][name]["ports"][0] == f"127.0.0.1:{port}:{port}", name
    buttons = settings.alerts.incidents.interactivity.port
    assert COMPOSE["services"]["worker"]["ports"][1:] == [f"127.0.0.1:{buttons}:{buttons}"]
    assert all(len(COMPOSE["services"][n]["ports"]) == 1 for n in expected if n != "worker")


def test_every_mounted_file_exists() -> None:
    for name, service in COMPOSE["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"


def test_services_use_the_env_overrides_the_settings_know() -> None:
    from alerts.interactivity import SIGNING_SECRET_ENV
    from socialpulse.settings import ENV_OVERRIDES, INTERACTIVITY_HOST_ENV, SLACK_STUB_URL_ENV

    known = {
        *ENV_OVERRIDES,
        SLACK_STUB_URL_ENV,
        INTERACTIVITY_HOST_ENV,
        SIGNING_SECRET_ENV,
        "SLACK_BOT_TOKEN",
    }
    for name in ("worker", "simulator"):
        env = COMPOSE["services"][name]["environment"]
        assert set(env) <= known, f"{name}: unknown variables {set(env) - known}"
        assert env["SOCIALPULSE_KAFKA_BOOTSTRAP"] == "kafka:19092"
    targets = json.loads((ROOT / "config/prometheus/targets-compose/worker.json").read_text())
    assert targets[0]["targets"] == ["worker:9300"]


def test_prometheus_config_passes_promtool(stack) -> None:
    # `stack` installs Debian's prometheus package, which ships promtool.
    promtool = shutil.which("promtool") or "/usr/bin/promtool"
    done = subprocess.run(
        [promtool, "check", "config", str(ROOT / "config/prometheus/prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_grafana_boards_are_provisionable_and_use_only_exported_metrics() -> None:
    datasource = yaml.safe_load(
        (ROOT / "grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    uid = datasource["datasources"][0]["uid"]
    provider = yaml.safe_load(
        (ROOT / "grafana/provisioning/dashboards/socialpulse.yml").read_text()
    )
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    kpis = load_settings(ROOT / "config", {}).kpis.kpis
    exported = (
        {metric_name(c) for c in ALL_COUNTERS}
        | {k.metric_name for k in kpis}
        | {
            "socialpulse_events_consumed_total",
            "socialpulse_events_counted_total",
            "socialpulse_events_duplicate_total",
            "socialpulse_events_invalid_total",
            "socialpulse_alerts_sent_total",
            "socialpulse_mentions_sentiment_total",
            # alerts.detection_metrics
            "socialpulse_kpi_baseline",
            "socialpulse_alert_rule_trigger_level",
            "socialpulse_alert_rule_firing",
            "socialpulse_kpi_benchmark",
            "socialpulse_target_progress_ratio",
            "socialpulse_target_time_used_ratio",
            "socialpulse_target_on_track",
        }
    )
    boards = sorted((ROOT / "grafana/dashboards").glob("*.json"))
    assert boards
    uids = set()
    for board in boards:
        dashboard = json.loads(board.read_text())
        assert dashboard["uid"] not in uids
        uids.add(dashboard["uid"])
        panel_ids = [p["id"] for p in dashboard["panels"]]
        assert len(panel_ids) == len(set(panel_ids))
        for panel in dashboard["panels"]:
            assert panel["description"] and panel["fieldConfig"]["defaults"]["unit"], panel["title"]
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == uid
                used = set(re.findall(r"\bsocialpulse_\w+", target["expr"]))
                assert used and used <= exported, (panel["title"], used - exported)
