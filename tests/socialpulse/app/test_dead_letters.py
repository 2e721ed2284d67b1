"""Dead letters read back: each known once by its source position, however often the topic
holds it (a worker killed mid-batch writes some again when it restarts)."""

from __future__ import annotations

from socialpulse.app.dead_letters import once, parse, select
from socialpulse.core.dead_letter import dead_letter_headers


def letter(offset: int, source_offset: int, index: int | None = None, reason: str = "not_json"):
    headers = dead_letter_headers(reason, "d", "social.mentions", 2, source_offset, index, 1.0)
    return parse(0, offset, b"acme", b"{oops", headers.items())


def test_copies_of_one_source_position_are_one_dead_letter() -> None:
    letters = [
        letter(0, 17),
        letter(1, 18, index=0),
        letter(2, 18, index=1),
        letter(3, 17),  # written again after a crash
        letter(4, 18, index=1),
        letter(5, 19),
    ]
    kept = once(letters)
    assert [(d.where, d.source, d.also_at) for d in kept] == [
        ("0:0", "social.mentions[2]@17", ("0:3",)),
        ("0:1", "social.mentions[2]@18 #0", ()),
        ("0:2", "social.mentions[2]@18 #1", ("0:4",)),
        ("0:5", "social.mentions[2]@19", ()),
    ]
    assert [d.to_dict()["copies"] for d in kept] == [2, 1, 2, 1]
    # `dlq show 0:3` (a copy's position) shows the one dead letter it is a copy of.
    assert [d.where for d in select(kept, at=["0:3"])] == ["0:0"]


def test_a_dead_letter_without_its_source_headers_is_its_own() -> None:
    bare = [parse(0, n, None, b"x", []) for n in range(3)]
    assert [d.where for d in once(bare)] == ["0:0", "0:1", "0:2"]
    assert bare[0].position is None
