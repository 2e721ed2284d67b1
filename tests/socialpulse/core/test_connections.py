"""A connection lost mid-write that redis-py lets out as the transport's AttributeError or
TypeError (redis/redis-py#4287) counts as Redis being away; the same errors from our own code
do not."""

from __future__ import annotations

import pytest
import redis
import redis.asyncio as aredis

from socialpulse.core.connections import lost_mid_write, redis_failed, redis_unavailable


def raised(call: object) -> BaseException:
    with pytest.raises(Exception) as caught:
        call()  # type: ignore[operator]
    return caught.value


def test_an_error_out_of_redis_py_internals_is_a_lost_connection() -> None:
    # An AttributeError raised inside redis-py's asyncio connection code, as a write on a
    # connection whose stream the peer tore down raises it.
    inside = raised(lambda: aredis.Connection.pack_command(None, "PING"))  # type: ignore[arg-type]
    assert isinstance(inside, AttributeError)
    assert (lost_mid_write(inside), redis_unavailable(inside), redis_failed(inside)) == (
        True,
        True,
        True,
    )


def test_the_same_errors_from_our_code_are_bugs_not_redis() -> None:
    ours = raised(lambda: None.writelines)  # type: ignore[attr-defined]
    typed = raised(lambda: len(5))  # type: ignore[arg-type]
    for error in (ours, typed, ValueError("x")):
        assert (lost_mid_write(error), redis_unavailable(error), redis_failed(error)) == (
            False,
            False,
            False,
        )


def test_redis_py_s_own_classes_keep_their_meaning() -> None:
    down, refused = redis.ConnectionError("down"), redis.ResponseError("WRONGTYPE")
    assert (redis_unavailable(down), redis_failed(down)) == (True, True)
    assert (redis_unavailable(refused), redis_failed(refused)) == (False, True)
