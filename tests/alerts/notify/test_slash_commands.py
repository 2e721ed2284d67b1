"""The ``/socialpulse`` slash command and the verdict buttons at the endpoint (real Redis for
silences): signed, fresh and first-seen like clicks; a form Slack would not send gets 400 with
the reason; a command that cannot be done gets the person's reply saying why; hostile text in
a silence's why is escaped in what the channel sees."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
import redis

from alerts.incidents.store import ActionRequest
from alerts.notify.commands import Answer
from alerts.notify.interactivity import (
    STUB_SIGNING_SECRET,
    Interactivity,
    MalformedClick,
    read_click,
)
from alerts.silences.store import SilenceStore
from socialpulse.app.settings import Settings, load_settings
from socialpulse.core.redis_keys import RedisKeys
from tests.conftest import write_config

RESPONDER = "U0SOCIAL1"


@pytest.fixture
def logic(
    stack: Settings, tmp_path_factory: pytest.TempPathFactory, run_id: str
) -> Iterator[Interactivity]:
    folder = write_config(
        tmp_path_factory.mktemp("config"),
        run_id,
        brands=[{"id": "acme", "name": "Acme Coffee", "platforms": ["x"]}],
        alerts={"incidents": {"responders": [RESPONDER]}},
    )
    settings = load_settings(folder)
    client = redis.Redis.from_url(settings.pipeline.redis.url, decode_responses=True)
    yield Interactivity(settings, client, STUB_SIGNING_SECRET)
    client.close()


def signed(body: bytes, now: float) -> dict[str, str]:
    ts = str(int(now))
    digest = hmac.new(
        STUB_SIGNING_SECRET.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256
    ).hexdigest()
    return {"x-slack-request-timestamp": ts, "x-slack-signature": f"v0={digest}"}


def slash(logic: Interactivity, words: str | None, **fields: Any) -> Answer:
    form = {
        "command": "/socialpulse",
        "text": words,
        "user_id": RESPONDER,
        "channel_id": "C0CRISIS",
        "trigger_id": f"{time.time_ns()}",
    } | fields
    body = urlencode({k: v for k, v in form.items() if v is not None}).encode()
    now = time.time()
    return logic.handle_command(body, signed(body, now), now)


def test_a_silence_is_made_listed_and_expired(logic: Interactivity) -> None:
    made = slash(logic, "silence rule=negative_mentions_high for=1h why=<!channel> *launch*")
    assert (made.status, made.outcome, made.reply and made.reply["response_type"]) == (
        200,
        "accepted",
        "in_channel",
    )
    assert made.reply is not None
    assert made.reply["text"].endswith(": &lt;!channel&gt; *launch*. Firings it matches are "
                                       "recorded, not notified.")  # fmt: skip
    store = SilenceStore(logic.client, RedisKeys(logic.keys.prefix))
    [silence] = store.stored()
    assert (silence.id, silence.rules, silence.channel, silence.created_by) == (
        "s-1",
        ("negative_mentions_high",),
        "C0CRISIS",
        RESPONDER,
    )
    listing = slash(logic, "silences")
    assert listing.reply is not None and listing.reply["response_type"] == "ephemeral"
    assert listing.reply["text"].startswith("`s-1` active: rule=negative_mentions_high, until ")
    expired = slash(logic, "expire s-1")
    assert expired.reply == {
        "response_type": "in_channel",
        "text": f"Silence `s-1` (rule=negative_mentions_high) expired by <@{RESPONDER}>; what "
        "still fires under it opens now.",
    }
    [ended] = store.stored()
    assert ended.expired_by == RESPONDER and ended.expired_at is not None
    assert ended.over(ended.expired_at)
    for text, said in [
        ("silence brand=acme for=" + "9" * 400 + "d why=x", "for: '999"),
        ("silence brand=acme start=+" + "9" * 400 + "d for=1h why=x", "start: '+999"),
        ("silence brand=acme start=+400d for=1h why=x", "start: more than a year ahead"),
    ]:
        refused = slash(logic, text)
        assert (refused.status, refused.outcome) == (200, "refused")
        assert refused.reply is not None and refused.reply["text"].startswith(f"Not done: {said}")
    assert slash(logic, "expire s-9").reply == {
        "response_type": "ephemeral",
        "text": "Not done: no silence 's-9'; `socialpulse silences list` shows them",
    }


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"command": None}, "the form has 0 command fields, not one"),
        ({"command": "socialpulse"}, "command is not a slash command (/socialpulse)"),
        ({"user_id": "<@U1>"}, "user_id is not a Slack user id"),
        ({"channel_id": "general chat"}, "channel_id is not a Slack channel id"),
    ],
)
def test_a_form_slack_would_not_send_gets_400_with_the_reason(
    logic: Interactivity, fields: dict[str, Any], reason: str
) -> None:
    assert slash(logic, "silences", **fields) == Answer(400, "bad_request", reason)
    assert slash(logic, None) == Answer(400, "bad_request", "the form has 0 text fields, not one")


def test_refusals_say_why_and_make_nothing(logic: Interactivity) -> None:
    assert slash(logic, "silence brand=acme for=1h why=x", user_id="U0INTERN").outcome == (
        "not_responder"
    )
    for text, said in [
        ("silence brand=acme for=30d why=x", "end: 30d is longer than silences.max_duration"),
        ("silence brand=acme for=1h", "why: say why it is silenced"),
        ("silence for=1h why=x", "a silence needs at least one matcher"),
        ("silence brand=<b>acme</b> for=1h why=x", "brands: '&lt;b&gt;acme&lt;/b&gt;' is not"),
        ("frobnicate", "unknown command 'frobnicate'"),
    ]:
        answer = slash(logic, text)
        assert (answer.status, answer.outcome) == (200, "refused"), text
        assert answer.reply is not None
        assert answer.reply["text"].startswith(f"Not done: {said}"), answer.reply
    assert SilenceStore(logic.client, RedisKeys(logic.keys.prefix)).stored() == []
    help_text = slash(logic, "help").reply
    assert help_text is not None and help_text["text"].startswith("Usage: `/socialpulse silence")


def test_unsigned_stale_and_replayed_commands_change_nothing(logic: Interactivity) -> None:
    body = urlencode(
        {
            "command": "/socialpulse",
            "text": "silence brand=acme for=1h why=x",
            "user_id": RESPONDER,
            "channel_id": "C0CRISIS",
        }
    ).encode()
    now = time.time()
    assert logic.handle_command(body, {}, now).outcome == "unsigned"
    assert logic.handle_command(body, signed(body, now - 600), now).outcome == "stale"
    assert logic.handle_command(body, signed(body, now), now).outcome == "accepted"
    assert logic.handle_command(body, signed(body, now), now).outcome == "replayed"
    assert len(SilenceStore(logic.client, RedisKeys(logic.keys.prefix)).stored()) == 1


def verdict_click(action: dict[str, Any]) -> dict[str, Any]:
    return {"type": "block_actions", "user": {"id": RESPONDER}, "actions": [action]}


def test_verdict_buttons_and_the_reason_menu_are_read() -> None:
    useful = {"action_id": "verdict_useful", "value": "acme-3", "type": "button"}
    assert read_click(verdict_click(useful), [1800]) == ActionRequest(
        "acme-3", "verdict", RESPONDER, "from Slack", verdict="useful"
    )
    useless = {"action_id": "verdict_not_useful", "value": "acme-3", "type": "button"}
    assert read_click(verdict_click(useless), [1800]) == ActionRequest(
        "acme-3", "verdict", RESPONDER, "from Slack", verdict="not_useful"
    )
    picked = {
        "action_id": "verdict_reason",
        "type": "static_select",
        "selected_option": {"value": "acme-3|too_sensitive", "text": {"text": "Too sensitive"}},
    }
    assert read_click(verdict_click(picked), [1800]) == ActionRequest(
        "acme-3", "verdict", RESPONDER, "from Slack", verdict="not_useful", reason="too_sensitive"
    )
    for option, said in [
        (None, "payload.actions[0].selected_option.value is missing or not a string"),
        ({"value": 3}, "payload.actions[0].selected_option.value is missing or not a string"),
        (
            {"value": "acme-3|boring"},
            "payload.actions[0].selected_option.value 'acme-3|boring' is not <incident>|<reason>",
        ),
        (
            {"value": "<!here>|bot_wave"},
            "payload.actions[0].selected_option.value '<!here>|bot_wave' is not",
        ),
    ]:
        with pytest.raises(MalformedClick) as refused:
            read_click(verdict_click(picked | {"selected_option": option}), [1800])
        assert str(refused.value).startswith(said)
