"""Config loading: the shipped files are valid; every mistake names file, key and problem."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import redis
import redis.asyncio as aredis
import yaml

from socialpulse.app.settings import load_settings
from socialpulse.core.config import ConfigError
from socialpulse.core.config_types import format_duration, parse_duration
from socialpulse.core.connections import (
    RedisClusterUnreachable,
    async_redis_client,
    is_cluster,
    redis_client,
)
from tests.conftest import ROOT, free_port


@pytest.fixture
def config(tmp_path: Path) -> Path:
    folder = tmp_path / "config"
    shutil.copytree(ROOT / "config", folder)
    return folder


def edit(folder: Path, name: str, change) -> None:
    data = yaml.safe_load((folder / name).read_text())
    change(data)
    (folder / name).write_text(yaml.safe_dump(data))


def error(folder: Path, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(folder, environ or {})
    return str(caught.value).replace(str(folder) + "/", "")


def test_shipped_config_is_valid() -> None:
    settings = load_settings(ROOT / "config", {})
    assert settings.brand_ids == ["acme", "brewco", "globex", "initech"]
    assert settings.competitors == {"acme": ["brewco"]}
    assert settings.pipeline.windows.rolling == [60, 300, 900, 3600, 86400]
    assert settings.window_plan.tiers == (10, 60, 300, 3600)
    assert [k.metric_name for k in settings.kpis.kpis][:3] == [
        "socialpulse_mention_velocity_per_minute",
        "socialpulse_net_sentiment_ratio",
        "socialpulse_negative_share_ratio",
    ]
    assert [r.name for r in settings.alerts.rules][:2] == [
        "negative_mentions_high",
        "negative_spike",
    ]
    assert settings.alerts.rules[0].value == 80
    assert settings.alerts.evaluation.every == 10
    assert settings.pipeline.kafka.first_port == 9092


def test_durations() -> None:
    assert [parse_duration(v) for v in ("30s", "5m", "1h", "1d", 45)] == [30, 300, 3600, 86400, 45]
    assert [format_duration(s) for s in (45, 300, 3600, 90)] == ["45s", "5m", "1h", "90s"]
    with pytest.raises(ValueError, match="'7x' is not a duration"):
        parse_duration("7x")


def test_bad_duration_names_file_and_key(config: Path) -> None:
    edit(config, "alerts.yaml", lambda d: d["rules"][0].update(window="7x"))
    assert error(config) == (
        "alerts.yaml: rules[0].window: '7x' is not a duration (use 30s, 5m, 1h)"
    )


def test_unknown_key_is_refused(config: Path) -> None:
    edit(config, "socialpulse.yaml", lambda d: d["kafka"].update(partitons=3))
    assert error(config) == (
        "socialpulse.yaml: kafka.partitons: unknown key (check its spelling "
        "against the documented keys)"
    )


def test_wrong_type_in_a_list_item(config: Path) -> None:
    edit(config, "brands.yaml", lambda d: d["brands"][1].update(platforms="x"))
    assert error(config) == "brands.yaml: brands[1].platforms: Input should be a valid list"


def test_missing_required_key(config: Path) -> None:
    edit(config, "alerts.yaml", lambda d: d["slack"].pop("channel"))
    assert error(config) == "alerts.yaml: slack.channel: required key is missing"


def test_duplicate_brand(config: Path) -> None:
    edit(config, "brands.yaml", lambda d: d["brands"].append(dict(d["brands"][0])))
    assert error(config) == "brands.yaml: brands: brand id 'acme' is listed twice"


def test_competitor_must_be_another_configured_brand(config: Path) -> None:
    edit(config, "brands.yaml", lambda d: d["brands"][0].update(competitors=["brewco", "nope"]))
    assert error(config) == (
        "brands.yaml: brands: acme: competitor 'nope' is not another brand in this file "
        "(competitors are tracked as brands too, so their mentions are counted)"
    )


def test_kpi_windows_must_be_rolling_windows(config: Path) -> None:
    edit(config, "kpis.yaml", lambda d: d["kpis"][0].update(windows=["1h", "2h"]))
    assert error(config) == (
        "kpis.yaml: kpis[0].windows: 2h is not a rolling window of socialpulse.yaml "
        "(windows.rolling: [1m, 5m, 15m, 1h, 1d]); use one of those or add it there"
    )


def test_rule_window_must_be_a_rolling_window(config: Path) -> None:
    edit(config, "alerts.yaml", lambda d: d["rules"][1].update(window="2m"))
    assert error(config) == (
        "alerts.yaml: rules[1] (negative_spike).window: 2m is not a rolling window of "
        "socialpulse.yaml (windows.rolling: [1m, 5m, 15m, 1h, 1d]); use one of those or add it "
        "there"
    )


def test_rule_kind_parameters_and_references_are_checked(config: Path) -> None:
    edit(config, "alerts.yaml", lambda d: d["rules"][2].update(kind="rate_of_change"))
    assert error(config) == "alerts.yaml: rules[2]: a rate_of_change rule needs percent and over"
    edit(config, "alerts.yaml", lambda d: d["rules"][2].update(kind="deviation", z=5, budget=2))
    assert error(config) == (
        "alerts.yaml: rules[2]: budget applies to deviation and negative_spike rules without z "
        "(their level is calibrated to it); remove budget or z"
    )
    edit(config, "alerts.yaml", lambda d: d["rules"][2].pop("budget"))
    edit(config, "alerts.yaml", lambda d: d["rules"][2].update(kpi="mentionz"))
    assert error(config) == (
        "alerts.yaml: rules[2] (mention_volume_surge).kpi: 'mentionz' is neither a counter nor "
        "a KPI of kpis.yaml"
    )
    edit(
        config, "alerts.yaml", lambda d: d["rules"][2].update(kpi="mentions", direction="sideways")
    )
    assert error(config) == (
        "alerts.yaml: rules[2].direction: Input should be 'up', 'down' or 'both'"
    )


def test_budget_is_checked(config: Path) -> None:
    edit(config, "alerts.yaml", lambda d: d["budget"].update(per_week={"warning": 0}))
    assert error(config) == ("alerts.yaml: budget.per_week.warning: Input should be greater than 0")
    edit(config, "alerts.yaml", lambda d: d["budget"].update(per_week={"urgent": 1}))
    assert error(config) == (
        "alerts.yaml: budget.per_week.urgent.[key]: Input should be 'info', 'warning' or 'critical'"
    )
    edit(
        config,
        "alerts.yaml",
        lambda d: d["budget"].update(
            per_week={"warning": 1}, overrides=[{"brands": ["acmee"], "per_week": 2}]
        ),
    )
    assert error(config) == (
        "alerts.yaml: budget.overrides[0].brands: 'acmee' is not a brand of brands.yaml"
    )


def test_target_deadline_after_start(config: Path) -> None:
    edit(config, "alerts.yaml", lambda d: d["targets"][0].update(deadline="2026-10-01"))
    assert error(config) == (
        "alerts.yaml: targets[0]: deadline 2026-10-01 must come after start 2026-11-01"
    )


def test_window_without_a_bucket_tier(config: Path) -> None:
    edit(config, "socialpulse.yaml", lambda d: d["windows"].update(rolling=["5m", "45s"]))
    assert error(config) == (
        "socialpulse.yaml: windows.rolling: 45s is not a whole number of 10s buckets or is "
        "longer than 300 hours"
    )


def test_not_yaml_and_missing_file(config: Path) -> None:
    (config / "brands.yaml").write_text("brands: [unclosed")
    assert error(config).startswith("brands.yaml: not valid YAML:")
    (config / "brands.yaml").unlink()
    assert (
        error(config) == "brands.yaml: file not found (copy it from the project's config/ folder)"
    )


def test_kpi_formula_errors_name_the_kpi(config: Path) -> None:
    edit(config, "kpis.yaml", lambda d: d["kpis"][1].update(formula="mentions_positive - bogus"))
    assert error(config).startswith(
        "kpis.yaml: kpis[1].formula: unknown name 'bogus' (known: brand_replies, clicks, comments, "
    )
    edit(config, "kpis.yaml", lambda d: d["kpis"][1].update(formula="1", name="likes"))
    assert error(config) == (
        "kpis.yaml: kpis: KPI 'likes' has the name of a counter; choose another"
    )


def test_env_overrides_are_validated_too(config: Path) -> None:
    settings = load_settings(
        config, {"SOCIALPULSE_KAFKA_BOOTSTRAP": "kafka:19092", "SOCIALPULSE_METRICS_PORT": "9400"}
    )
    assert settings.pipeline.kafka.bootstrap_servers == "kafka:19092"
    assert settings.pipeline.worker.metrics_port == 9400
    assert settings.alerts.incidents.interactivity.host == "127.0.0.1"
    inside = load_settings(config, {"SOCIALPULSE_INTERACTIVITY_HOST": "0.0.0.0"})
    assert inside.alerts.incidents.interactivity.host == "0.0.0.0"
    assert error(config, {"SOCIALPULSE_REDIS_URL": "localhost"}) == (
        "socialpulse.yaml: redis.url: 'localhost' is not a Redis URL (e.g. redis://127.0.0.1:6379/0)"
    )
    assert settings.pipeline.redis.cluster is False
    clustered = load_settings(config, {"SOCIALPULSE_REDIS_CLUSTER": "true"})
    assert clustered.pipeline.redis.cluster is True
    assert error(config, {"SOCIALPULSE_REDIS_CLUSTER": "maybe"}) == (
        "socialpulse.yaml: redis.cluster: Input should be a valid boolean, unable to interpret "
        "input"
    )


def test_redis_clients_follow_the_cluster_setting(config: Path) -> None:
    single = load_settings(config, {}).pipeline.redis
    clustered = load_settings(config, {"SOCIALPULSE_REDIS_CLUSTER": "true"}).pipeline.redis
    # These clients connect lazily, so nothing here needs a server (the synchronous cluster
    # client asks its seed node for the slots at once: tests/e2e/test_redis_cluster_e2e.py).
    assert type(redis_client(single)) is redis.Redis
    assert type(async_redis_client(single)) is aredis.Redis
    assert not is_cluster(async_redis_client(single).pipeline())
    cluster = async_redis_client(clustered)
    assert type(cluster) is aredis.RedisCluster
    assert is_cluster(cluster) and is_cluster(cluster.pipeline())


def test_an_unreachable_redis_cluster_is_one_clear_error(config: Path) -> None:
    port = free_port()
    url = f"redis://:hunter2@127.0.0.1:{port}/0"
    clustered = load_settings(
        config, {"SOCIALPULSE_REDIS_CLUSTER": "true", "SOCIALPULSE_REDIS_URL": url}
    ).pipeline.redis
    with pytest.raises(RedisClusterUnreachable) as caught:
        redis_client(clustered)
    message = str(caught.value)
    assert message.startswith(f"no Redis Cluster node answers at 127.0.0.1:{port} (")
    assert message.endswith(
        "); start the cluster, or fix redis.url (SOCIALPULSE_REDIS_URL), or set "
        "redis.cluster: false for a single Redis"
    )
    assert "hunter2" not in message


def test_incident_policy_is_checked(config: Path) -> None:
    edit(config, "alerts.yaml", lambda d: d["incidents"]["routes"][0].update(brands=["nobody"]))
    assert error(config).startswith(
        "alerts.yaml: incidents.routes[0].brands: 'nobody' is not a brand of"
    )
    edit(config, "alerts.yaml", lambda d: d["incidents"]["routes"][0].update(brands=["acme"]))
    edit(
        config,
        "alerts.yaml",
        lambda d: d["incidents"].update(
            escalation=[{"after": "15m", "notify": "a"}, {"after": "5m", "notify": "b"}]
        ),
    )
    assert error(config) == (
        "alerts.yaml: incidents.escalation: escalation steps must come in order of increasing "
        "`after`"
    )


def test_campaign_metrics_name_brands_windows_and_kpis_that_exist(config: Path) -> None:
    def campaigns(**change):
        return lambda d: d["metrics"]["campaigns"].update(change)

    edit(config, "socialpulse.yaml", campaigns(brands=["acme", "nobody"]))
    assert error(config) == (
        "socialpulse.yaml: metrics.campaigns.brands[1]: 'nobody' is not a brand of brands.yaml "
        "(known: acme, brewco, globex, initech)"
    )
    edit(config, "socialpulse.yaml", campaigns(brands=["acme"], windows=["2h"]))
    assert error(config) == (
        "socialpulse.yaml: metrics.campaigns.windows[0]: 2h is not a rolling window "
        "(windows.rolling: [1m, 5m, 15m, 1h, 1d]); use one of those"
    )
    edit(config, "socialpulse.yaml", campaigns(windows=["1h"], kpis=["roi", "romance"]))
    assert error(config) == (
        "socialpulse.yaml: metrics.campaigns.kpis[1]: 'romance' is not a counter or a KPI of "
        "kpis.yaml"
    )
    edit(config, "socialpulse.yaml", campaigns(kpis=["roi"], max_per_brand=0))
    assert "metrics.campaigns.max_per_brand" in error(config)


def test_exported_windows_must_be_rolling_windows(config: Path) -> None:
    edit(config, "socialpulse.yaml", lambda d: d["metrics"].update(windows=["5m", "2h"]))
    assert error(config) == (
        "socialpulse.yaml: metrics: windows: 2h is not one of windows.rolling (1m, 5m, 15m, 1h, 1d)"
    )
    edit(config, "socialpulse.yaml", lambda d: d["metrics"].update(windows=[]))
    assert load_settings(config, {}).exported_windows == ()


def test_which_brands_a_worker_exports_is_owned_or_all(config: Path) -> None:
    assert load_settings(config, {}).pipeline.metrics.export_brands == "owned"
    edit(config, "socialpulse.yaml", lambda d: d["metrics"].update(export_brands="mine"))
    assert error(config) == (
        "socialpulse.yaml: metrics.export_brands: Input should be 'owned' or 'all'"
    )
    edit(config, "socialpulse.yaml", lambda d: d["metrics"].update(export_brands="all"))
    assert load_settings(config, {}).pipeline.metrics.export_brands == "all"


def test_which_window_gauges_a_worker_exports_is_all_or_those_the_boards_read(
    config: Path,
) -> None:
    edit(config, "socialpulse.yaml", lambda d: d["metrics"].update(gauges="some"))
    assert error(config) == ("socialpulse.yaml: metrics.gauges: Input should be 'all' or 'boards'")
    edit(config, "socialpulse.yaml", lambda d: d["metrics"].update(gauges="boards"))
    assert load_settings(config, {}).pipeline.metrics.gauges == "boards"


def test_snapshot_tracking_age_is_bounded(config: Path) -> None:
    edit(config, "socialpulse.yaml", lambda d: d["snapshots"].update(track_for="10m"))
    assert error(config).startswith(
        "socialpulse.yaml: snapshots.track_for: Input should be greater than or equal to 3600"
    )


def test_batch_limits_are_bounded(config: Path) -> None:
    # A batch of a few bytes would be a Redis round trip per message; one of gigabytes, a
    # worker's memory gone on one poll.
    edit(config, "socialpulse.yaml", lambda d: d["worker"].update(batch_bytes=1000))
    assert error(config).startswith(
        "socialpulse.yaml: worker.batch_bytes: Input should be greater than or equal to 65536"
    )
    edit(config, "socialpulse.yaml", lambda d: d["worker"].update(batch_bytes="16MiB"))
    assert error(config).startswith(
        "socialpulse.yaml: worker.batch_bytes: Input should be a valid integer"
    )


@pytest.mark.parametrize("days", [0, 5000, "a year"])
def test_rollups_keep_days_out_of_range_is_refused(config: Path, days: object) -> None:
    edit(config, "socialpulse.yaml", lambda d: d.update(rollups={"keep_days": days}))
    assert "socialpulse.yaml" in (message := error(config)) and "rollups.keep_days" in message


def test_silences_and_the_weekly_summary_are_checked(config: Path) -> None:
    drop = {
        "name": "drop",
        "comment": "Thursday drop",
        "brands": ["acme"],
        "rules": ["mention_volume_surge"],
        "days": ["thu"],
        "start": "09:45",
        "end": "12:00",
    }
    edit(config, "alerts.yaml", lambda d: d["silences"].update(recurring=[drop]))
    assert load_settings(config, {}).alerts.silences.recurring[0].name == "drop"
    for change, said in [
        ({"brands": ["nobody"]}, "silences.recurring[0] (drop).brands: 'nobody' is not a brand"),
        ({"platforms": ["myspace"]}, "silences.recurring[0] (drop).platforms: 'myspace' is no"),
        ({"rules": ["no_rule"]}, "silences.recurring[0] (drop).rules: 'no_rule' is not a rule"),
        ({"severities": ["high"]}, "silences.recurring[0] (drop).severities: 'high' is not"),
        ({"days": ["someday"]}, "silences.recurring[0].days[0]: 'someday' is not a day; use mon"),
    ]:
        edit(config, "alerts.yaml", lambda d, c=change: d["silences"].update(recurring=[drop | c]))
        assert error(config).startswith(f"alerts.yaml: {said}"), error(config)
    edit(config, "alerts.yaml", lambda d: d["silences"].update(recurring=[], notify_before="x"))
    assert error(config).startswith("alerts.yaml: silences.notify_before: 'x' is not a duration")
    edit(config, "alerts.yaml", lambda d: d["silences"].update(notify_before="15m"))
    edit(config, "alerts.yaml", lambda d: d["incidents"]["weekly_summary"].update(day="monday"))
    assert error(config).startswith(
        "alerts.yaml: incidents.weekly_summary.day: 'monday' is not a day"
    )
    edit(
        config,
        "alerts.yaml",
        lambda d: d["incidents"]["weekly_summary"].update(day="mon", useful_floor=1.5),
    )
    assert error(config).startswith("alerts.yaml: incidents.weekly_summary.useful_floor:")
