"""docker-compose.yml, the Prometheus config and the Grafana provisioning agree with the code."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import yaml

from ingest.config import load_ingest
from socialpulse.app.settings import load_settings
from socialpulse.devtools.stack.kafka import KAFKA_VERSION
from tests.conftest import ROOT

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
        "gateway",
        "poller",
        "platform-stub",
    }
    for opt_in in ("gateway", "poller", "platform-stub"):  # opt-in: they need tokens
        assert services[opt_in]["profiles"] == ["ingest"]
    assert services["kafka"]["image"] == f"apache/kafka:{KAFKA_VERSION}"
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    for name in ("worker", "simulator", "slack-stub", "gateway", "poller", "platform-stub"):
        assert services[name]["build"] == "."
    dockerfile = (ROOT / "Dockerfile").read_text()
    packages = re.search(r"include = \[(.*)\]", (ROOT / "pyproject.toml").read_text())
    assert packages is not None
    for package in re.findall(r'"(\w+)\*"', packages.group(1)):
        assert f"COPY {package} ./{package}\n" in dockerfile, f"the image lacks {package}/"


def test_compose_ports_match_the_config_and_bind_to_loopback() -> None:
    settings = load_settings(ROOT / "config", {})
    expected = {
        "kafka": settings.pipeline.kafka.first_port,
        "redis": settings.pipeline.redis.port,
        "prometheus": settings.pipeline.prometheus.port,
        "grafana": 3000,
        "slack-stub": settings.alerts.slack.stub_port,
        "worker": settings.pipeline.worker.metrics_port,
        "gateway": load_ingest(settings.config_dir, settings.brands).gateway.port,
    }
    worker = expected.pop("worker")
    for name, port in expected.items():
        assert COMPOSE["services"][name]["ports"][0] == f"127.0.0.1:{port}:{port}", name
    # The worker scales: a host port range each, starting at the configured ports.
    buttons = settings.alerts.incidents.interactivity.port
    assert COMPOSE["services"]["worker"]["ports"] == [
        f"127.0.0.1:{worker}-{worker + 5}:{worker}",
        f"127.0.0.1:{buttons}-{buttons + 5}:{buttons}",
    ]
    assert all(len(COMPOSE["services"][n]["ports"]) == 1 for n in expected if n != "worker")


def test_every_mounted_file_exists() -> None:
    for name, service in COMPOSE["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"


def test_services_use_the_env_overrides_the_settings_know() -> None:
    from alerts.notify.interactivity import SIGNING_SECRET_ENV
    from socialpulse.app.settings import ENV_OVERRIDES, INTERACTIVITY_HOST_ENV, SLACK_STUB_URL_ENV

    known = {
        *ENV_OVERRIDES,
        SLACK_STUB_URL_ENV,
        INTERACTIVITY_HOST_ENV,
        SIGNING_SECRET_ENV,
        "SLACK_BOT_TOKEN",
    }
    ingest = load_ingest(config_dir=ROOT / "config")
    tokens = {ingest.token_env(s) for s in ingest.gateway.sources}
    secrets = {ingest.meta.app_secret_env, ingest.meta.verify_token_env}
    secrets |= {hook.secret_env for hook in ingest.webhooks.values()}
    gateway = COMPOSE["services"]["gateway"]["environment"]
    assert set(gateway) == set(COMPOSE["services"]["simulator"]["environment"]) | tokens | secrets
    # The poller: the accounts' token variables and its own overrides, nothing else.
    from ingest.poll_config import POLL_ENV_OVERRIDES

    poll_tokens = {a.token_env for a in ingest.pollers.accounts.values()}
    poller = COMPOSE["services"]["poller"]["environment"]
    assert set(poller) == (
        set(COMPOSE["services"]["simulator"]["environment"]) | poll_tokens | set(POLL_ENV_OVERRIDES)
    )
    assert poller["SOCIALPULSE_POLL_STUB_URL"] == "http://platform-stub:9330"
    for name in ("worker", "simulator"):
        env = COMPOSE["services"][name]["environment"]
        assert set(env) <= known, f"{name}: unknown variables {set(env) - known}"
        assert env["SOCIALPULSE_KAFKA_BOOTSTRAP"] == "kafka:19092"
    # Compose's Prometheus finds every worker replica and the gateway by DNS (on their ports);
    # otherwise it is the local one, whose jobs read target files.
    local = yaml.safe_load((ROOT / "config/prometheus/prometheus.yml").read_text())
    compose = yaml.safe_load((ROOT / "config/prometheus/prometheus-compose.yml").read_text())
    found = {job["job_name"]: job.pop("dns_sd_configs") for job in compose["scrape_configs"]}
    assert found == {
        "socialpulse-worker": [
            {"names": ["worker"], "type": "A", "port": 9300, "refresh_interval": "15s"}
        ],
        "socialpulse-gateway": [
            {"names": ["gateway"], "type": "A", "port": 9320, "refresh_interval": "15s"}
        ],
        "socialpulse-poller": [
            {"names": ["poller"], "type": "A", "port": 9325, "refresh_interval": "15s"}
        ],
    }
    assert COMPOSE["services"]["gateway"]["ports"] == ["127.0.0.1:9320:9320"]
    assert ingest.gateway.port == 9320
    files = {job["job_name"]: job.pop("file_sd_configs") for job in local["scrape_configs"]}
    assert files == {
        "socialpulse-worker": [{"files": ["targets/*.json"], "refresh_interval": "30s"}],
        "socialpulse-gateway": [{"files": ["gateway-targets/*.json"], "refresh_interval": "30s"}],
        "socialpulse-poller": [{"files": ["poller-targets/*.json"], "refresh_interval": "30s"}],
    }
    assert (compose["scrape_configs"], compose["global"], compose["rule_files"]) == (
        local["scrape_configs"],
        local["global"],
        local["rule_files"],
    )


def test_prometheus_config_passes_promtool(stack) -> None:
    # `stack` installs Debian's prometheus package, which ships promtool.
    promtool = shutil.which("promtool") or "/usr/bin/promtool"
    for name in ("prometheus.yml", "prometheus-compose.yml"):
        done = subprocess.run(
            [promtool, "check", "config", str(ROOT / "config/prometheus" / name)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, name + done.stdout + done.stderr


def test_recording_rules_pass_promtool_check_and_their_unit_tests(stack) -> None:
    promtool = shutil.which("promtool") or "/usr/bin/promtool"
    rules = ROOT / "config/prometheus/rules"
    for command in (
        ["check", "rules", str(rules / "socialpulse.rules.yml")],
        ["test", "rules", str(rules / "socialpulse.test.yml")],
    ):
        done = subprocess.run(
            [promtool, *command], capture_output=True, text=True, check=False, cwd=rules
        )
        assert done.returncode == 0, done.stdout + done.stderr
    mounts = COMPOSE["services"]["prometheus"]["volumes"]
    assert "./config/prometheus/rules:/etc/prometheus/rules:ro" in mounts


def test_committed_boards_are_what_the_specs_build() -> None:
    from socialpulse.app.boards.grafana_json import rendered

    files = rendered(load_settings(ROOT / "config", {}))
    folder = ROOT / "grafana/dashboards"
    assert sorted(files) == sorted(p.name for p in folder.glob("*.json"))
    for name, text in files.items():
        assert (folder / name).read_text() == text, f"{name}: run `socialpulse boards build`"


def _overlaps(a: dict, b: dict) -> bool:
    return (
        a["x"] < b["x"] + b["w"]
        and b["x"] < a["x"] + a["w"]
        and a["y"] < b["y"] + b["h"]
        and b["y"] < a["y"] + a["h"]
    )


def test_grafana_boards_are_provisionable() -> None:
    datasource = yaml.safe_load(
        (ROOT / "grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    uid = datasource["datasources"][0]["uid"]
    provider = yaml.safe_load(
        (ROOT / "grafana/provisioning/dashboards/socialpulse.yml").read_text()
    )
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    home = COMPOSE["services"]["grafana"]["environment"][
        "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"
    ]
    assert (ROOT / "grafana/dashboards" / Path(home).name).is_file()
    boards = sorted((ROOT / "grafana/dashboards").glob("*.json"))
    titles = {json.loads(b.read_text())["title"] for b in boards}
    assert titles == {
        "SocialPulse / Brand overview",
        "SocialPulse / Sentiment and crisis",
        "SocialPulse / Engagement and content",
        "SocialPulse / Conversion and ROI",
        "SocialPulse / Customer care",
        "SocialPulse / Pipeline health",
        "SocialPulse / Targets",
        "SocialPulse / Long view",
    }
    uids = set()
    for board in boards:
        dashboard = json.loads(board.read_text())
        # What Grafana's file provisioning needs: a unique uid (at most 40 characters), a
        # title, a schema version it migrates from, and panels with ids, types and positions.
        assert dashboard["uid"] not in uids and len(dashboard["uid"]) <= 40
        uids.add(dashboard["uid"])
        assert dashboard["title"] and dashboard["schemaVersion"] >= 36
        variables = {v["name"] for v in dashboard["templating"]["list"]}
        for variable in dashboard["templating"]["list"]:
            assert variable["datasource"]["uid"] == uid
        panel_ids = [p["id"] for p in dashboard["panels"]]
        assert len(panel_ids) == len(set(panel_ids))
        placed: list[dict] = []
        for panel in dashboard["panels"]:
            where = (board.name, panel["title"])
            assert panel["type"] in {"timeseries", "stat", "bargauge"}, where
            assert panel["description"] and panel["fieldConfig"]["defaults"]["unit"], where
            steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
            assert steps[0]["value"] is None, where  # the base colour
            values = [s["value"] for s in steps[1:]]
            assert values == sorted(values), where
            grid = panel["gridPos"]
            assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, where
            assert not any(_overlaps(grid, other) for other in placed), where
            placed.append(grid)
            assert panel["datasource"]["uid"] == uid
            ref_ids = [t["refId"] for t in panel["targets"]]
            assert ref_ids and len(ref_ids) == len(set(ref_ids)), where
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == uid
                used = set(re.findall(r"\$(\w+)", target["expr"]))
                assert used <= variables, (where, used - variables)
        for annotation in dashboard["annotations"]["list"]:
            assert annotation["datasource"]["uid"] == uid
            assert set(re.findall(r"\$(\w+)", annotation["expr"])) <= variables


def test_kpi_panels_describe_the_formula_of_kpis_yaml() -> None:
    kpis = {k.metric_name: k for k in load_settings(ROOT / "config", {}).kpis.kpis}
    for board in sorted((ROOT / "grafana/dashboards").glob("*.json")):
        for panel in json.loads(board.read_text())["panels"]:
            for target in panel["targets"]:
                for name in re.findall(r"\bsocialpulse_\w+", target["expr"]):
                    if name in kpis:
                        assert kpis[name].formula in panel["description"], (board.name, name)
