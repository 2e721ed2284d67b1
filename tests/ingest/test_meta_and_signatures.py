"""Meta webhooks (handshake, signature, payload mapping) and generic HMAC signatures."""

from __future__ import annotations

import base64
import hashlib
import hmac

from ingest import meta
from ingest.signatures import sign, valid_signature

SECRET = "app-secret-for-tests"
ACCOUNTS = {"17841400000000002": "acme", "104000000000001": "globex"}


def test_signature_is_hmac_sha256_of_the_exact_body() -> None:
    body = b'{"object":"instagram","entry":[]}'
    header = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert valid_signature(SECRET, body, header)
    assert valid_signature(SECRET, body, header.upper().replace("SHA256=", "sha256="))
    assert not valid_signature(SECRET, body + b" ", header)
    assert not valid_signature("other", body, header)
    assert not valid_signature(SECRET, body, None)
    assert not valid_signature(SECRET, body, header.removeprefix("sha256="))
    assert not valid_signature("", body, header)


def test_configurable_signatures() -> None:
    body = b"[]"
    digest = hmac.new(b"k", body, hashlib.sha1).digest()
    assert sign("k", body, "sha1", "base64") == base64.b64encode(digest).decode()
    assert valid_signature("k", body, base64.b64encode(digest).decode(), "sha1", "", "base64")
    assert not valid_signature("k", body, digest.hex(), "sha1", "", "base64")


def test_handshake_echoes_the_challenge_only_for_the_verify_token() -> None:
    params = {"hub.mode": "subscribe", "hub.verify_token": "vt", "hub.challenge": "1158201444"}
    assert meta.handshake(params, "vt") == "1158201444"
    assert meta.handshake(params | {"hub.verify_token": "nope"}, "vt") is None
    assert meta.handshake(params | {"hub.mode": "unsubscribe"}, "vt") is None
    assert meta.handshake(params, "") is None


def test_instagram_comment_is_a_mention_and_a_comment_interaction() -> None:
    payload = {
        "object": "instagram",
        "entry": [
            {
                "id": "17841400000000002",
                "time": 1796040000,
                "changes": [
                    {
                        "field": "comments",
                        "value": {
                            "id": "17865799348089039",
                            "text": "This latte is awful",
                            "from": {"id": "2323", "username": "mia"},
                            "media": {"id": "123123", "media_product_type": "FEED"},
                        },
                    },
                    {"field": "story_insights", "value": {"media_id": "1"}},
                ],
            }
        ],
    }
    mapped = meta.map_payload(payload, ACCOUNTS)
    assert mapped.rejected == [] and mapped.skipped == 1
    base = {"schema_version": 1, "platform": "instagram", "brand": "acme"}
    ts = "2026-11-30T12:00:00+00:00"
    assert mapped.events == [
        base
        | {
            "type": "mention",
            "id": "ig-comment-17865799348089039",
            "ts": ts,
            "author": "mia",
            "text": "This latte is awful",
        },
        base
        | {
            "type": "interaction",
            "id": "ig-comment-17865799348089039-comment",
            "ts": ts,
            "kind": "comment",
            "content_id": "123123",
            "user_id": "2323",
        },
    ]


def test_page_feed_reactions_shares_and_own_posts() -> None:
    def feed(value: dict) -> dict:
        return {
            "object": "page",
            "entry": [
                {
                    "id": "104000000000001",
                    "time": 1796040000,
                    "changes": [{"field": "feed", "value": value}],
                }
            ],
        }

    who = {"from": {"id": "77", "name": "Sam"}, "post_id": "104_9", "created_time": 1796040060}
    reaction = meta.map_payload(feed(who | {"item": "reaction", "verb": "add"}), ACCOUNTS)
    assert [(e["kind"], e["content_id"], e["user_id"]) for e in reaction.events] == [
        ("like", "104_9", "77")
    ]
    assert reaction.events[0]["ts"] == "2026-11-30T12:01:00+00:00"
    share = meta.map_payload(feed(who | {"item": "share", "share_id": "s1"}), ACCOUNTS)
    assert share.events[0]["id"] == "fb-share-s1-share"
    removed = meta.map_payload(feed(who | {"item": "comment", "verb": "remove"}), ACCOUNTS)
    own = meta.map_payload(
        feed(who | {"item": "status", "from": {"id": "104000000000001"}}), ACCOUNTS
    )
    assert (removed.events, removed.skipped, own.events, own.skipped) == ([], 1, [], 1)


def test_messages_are_care_threads_and_unknown_accounts_are_rejected() -> None:
    payload = {
        "object": "page",
        "entry": [
            {
                "id": "104000000000001",
                "time": 1796040000,
                "messaging": [
                    {
                        "sender": {"id": "555"},
                        "recipient": {"id": "104000000000001"},
                        "timestamp": 1796040000123,
                        "message": {"mid": "m_1", "text": "My bag is lost"},
                    },
                    {
                        "sender": {"id": "104000000000001"},
                        "recipient": {"id": "555"},
                        "timestamp": 1796040090000,
                        "message": {"mid": "m_2", "text": "We are on it", "is_echo": True},
                    },
                    {"sender": {"id": "555"}, "read": {"watermark": 1}},
                ],
            },
            {"id": "999", "time": 1796040000, "changes": []},
        ],
    }
    mapped = meta.map_payload(payload, ACCOUNTS)
    inbound, reply = mapped.events
    assert inbound["needs_reply"] is True and inbound["conversation_id"] == "meta-thread-555"
    assert inbound["author"] == "555" and inbound["ts"] == "2026-11-30T12:00:00.123000+00:00"
    assert reply["from_brand"] is True and reply["reply_to"] == "meta-thread-555"
    assert reply["author"] == "globex_care" and "needs_reply" not in reply
    assert mapped.skipped == 1
    assert [(r.reason, r.detail) for r in mapped.rejected] == [
        ("unknown_account", "account '999' is not in config/ingest.yaml meta.accounts")
    ]
    assert meta.map_payload([], ACCOUNTS).rejected[0].reason == "invalid_fields"
