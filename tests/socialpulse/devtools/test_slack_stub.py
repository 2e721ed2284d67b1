"""The local Slack stub answers slack-sdk's real client the way Slack does."""

from __future__ import annotations

import json
import urllib.request
import uuid

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from alerts.notify.slack_message import STUB_TOKEN
from socialpulse.app.settings import Settings


def test_post_message_is_accepted_and_recorded(stack: Settings) -> None:
    channel = f"#stub-{uuid.uuid4().hex[:8]}"
    client = WebClient(token=STUB_TOKEN, base_url=stack.alerts.slack.stub_url)
    reply = client.chat_postMessage(
        channel=channel,
        text="hello",
        blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}],
    )
    assert reply["ok"] is True and reply["channel"] == channel
    stub = stack.alerts.slack.stub_url.rstrip("/").removesuffix("/api")
    with urllib.request.urlopen(f"{stub}/stub/messages?channel=%23{channel[1:]}") as response:
        [message] = json.load(response)["messages"]
    assert (message["method"], message["text"], message["ts"]) == (
        "chat.postMessage",
        "hello",
        reply["ts"],
    )
    assert message["blocks"][0]["text"]["text"] == "*hi*"


def test_errors_match_slack(stack: Settings) -> None:
    url = stack.alerts.slack.stub_url
    with pytest.raises(SlackApiError) as no_token:
        WebClient(token="", base_url=url).chat_postMessage(channel="#c", text="x")
    assert no_token.value.response["error"] == "not_authed"
    with pytest.raises(SlackApiError) as no_channel:
        WebClient(token=STUB_TOKEN, base_url=url).chat_postMessage(channel="", text="x")
    assert no_channel.value.response["error"] == "channel_not_found"
    with pytest.raises(SlackApiError) as unknown:
        WebClient(token=STUB_TOKEN, base_url=url).api_call("chat.nonsense")
    assert unknown.value.response["error"] == "unknown_method"


def test_faults_for_one_channel_fail_only_its_calls(stack: Settings) -> None:
    url = stack.alerts.slack.stub_url
    stub = url.rstrip("/").removesuffix("/api")
    mine, other = f"#faults-{uuid.uuid4().hex[:8]}", f"#other-{uuid.uuid4().hex[:8]}"
    request = urllib.request.Request(
        f"{stub}/stub/faults",
        data=json.dumps({"responses": [{"status": 500}], "channel": mine}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:
        assert json.load(response) == {"ok": True, "faults": 1}
    # No retries here: the first answer is the one to see.
    client = WebClient(token=STUB_TOKEN, base_url=url, retry_handlers=[])
    assert client.chat_postMessage(channel=other, text="unaffected")["ok"] is True
    with pytest.raises(SlackApiError) as failed:
        client.chat_postMessage(channel=mine, text="fails once")
    assert (failed.value.response.status_code, failed.value.response["error"]) == (
        500,
        "stub_fault_500",
    )
    assert client.chat_postMessage(channel=mine, text="then passes")["ok"] is True
