"""``pollers:`` of config/ingest.yaml: the accounts ``socialpulse poll`` reads from the
platforms' APIs, how often, with which token (named by its environment variable, never the
token itself), and the rate-limit settings."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from socialpulse.core.config_types import Duration, Strict

SourceKind = Literal["instagram_media", "facebook_posts", "page_insights", "x_posts", "x_mentions"]
# The token the pollers send to the local API stub when an account's own is not set: the
# demo and the tests run the real client code without a platform account.
STUB_TOKEN = "socialpulse-platform-stub"
# Environment variables that override pollers settings (docker-compose: the stub and the
# /metrics address are other containers' or every interface).
POLL_ENV_OVERRIDES = {
    "SOCIALPULSE_POLL_STUB_URL": "stub_url",
    "SOCIALPULSE_POLL_METRICS_HOST": "metrics_host",
}


class PollAccount(Strict):
    """One thing to poll: a source kind on one platform account, counted for one brand."""

    source: SourceKind
    brand: str
    # Instagram professional account id, Facebook Page id, or X user id (not for x_mentions).
    account_id: str = Field("", pattern=r"^[A-Za-z0-9_.:-]{0,128}$")
    # x_mentions: the recent-search query (X's operators: "@acme OR acme -is:retweet").
    query: str = Field("", max_length=4096)
    # The environment variable holding the access token (Graph) or bearer token (X).
    token_env: str = Field(pattern=r"^[A-Z][A-Z0-9_]{0,127}$")
    every: Duration = 300  # between two polls of this account
    max_pages: int = Field(5, ge=1, le=100)  # per poll; a search goes on at the next poll
    # Records a page (Graph's limit, X's max_results: both allow 10 to 100 here).
    page_size: int = Field(25, ge=10, le=100)
    # page_insights of an Instagram account rather than a Facebook Page.
    platform: Literal["facebook", "instagram"] = "facebook"
    # x_posts: also the non-public and organic metrics (the account's own posts of the last
    # 30 days, with a user-context token).
    own_metrics: bool = False
    # Graph: the Meta app whose budget (X-App-Usage) this token spends; accounts of one app
    # share it.
    app: str = Field("default", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    # The mapping of this file that turns a response into events; default: the source's own.
    mapping: str | None = None
    # page_insights: how many days back the first poll reads.
    first_days: int = Field(7, ge=1, le=90)

    @model_validator(mode="after")
    def _needs(self) -> PollAccount:
        if self.source == "x_mentions" and not self.query.strip():
            raise ValueError("x_mentions needs query: the recent-search query, e.g. '@acme'")
        if self.source != "x_mentions" and not self.account_id:
            raise ValueError(f"{self.source} needs account_id: the platform's id of the account")
        return self


class PollerSettings(Strict):
    """``pollers:``: where the APIs are, the budgets kept, and the accounts."""

    graph_url: str = "https://graph.facebook.com"
    graph_version: str = Field("v25.0", pattern=r"^v\d+\.\d+$")
    x_url: str = "https://api.x.com"
    # Where accounts whose token is not set are polled: the project's local API stub, whose
    # made-up posts and mentions keep the demo moving. In production turn stub_without_token
    # off: an account without its token is then not polled, and says so.
    stub_url: str = "http://127.0.0.1:9330"
    stub_without_token: bool = True
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(9325, ge=0, le=65535)
    # A Graph budget used this much (0-1) rests until the platform says it is regained.
    stop_at_usage: float = Field(0.9, gt=0, le=1)
    request_timeout: Duration = 30
    backoff_base: Duration = 30  # after a failure; doubles per failure in a row
    backoff_max: Duration = 3600
    # After a refused token or request: a person has to act, so it is retried rarely.
    retry_refused: Duration = 3600
    accounts: dict[str, PollAccount] = Field(default_factory=dict)
