"""When the worker re-executes itself on jemalloc, and with what environment."""

from __future__ import annotations

from socialpulse.app.allocator import MALLOC_CONF, jemalloc_environment

LIB = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"


def test_jemalloc_is_preloaded_and_used_for_python_objects_too() -> None:
    env = jemalloc_environment({"PATH": "/bin"}, LIB)
    assert env == {
        "PATH": "/bin",
        "LD_PRELOAD": LIB,
        "PYTHONMALLOC": "malloc",
        "MALLOC_CONF": "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:1000",
    }
    assert env["MALLOC_CONF"] == MALLOC_CONF
    # An operator's own jemalloc settings win.
    own = jemalloc_environment({"MALLOC_CONF": "narenas:2"}, LIB)
    assert own is not None and own["MALLOC_CONF"] == "narenas:2"
    # Another preloaded library stays, after jemalloc.
    env = jemalloc_environment({"LD_PRELOAD": "/opt/libother.so"}, LIB)
    assert env is not None and env["LD_PRELOAD"] == f"{LIB}:/opt/libother.so"


def test_no_reexec_when_on_it_already_opted_out_or_not_installed() -> None:
    assert jemalloc_environment({"LD_PRELOAD": LIB, "PYTHONMALLOC": "malloc"}, LIB) is None
    assert jemalloc_environment({"LD_PRELOAD": "/x/libjemalloc.so.2"}, LIB) is None
    assert jemalloc_environment({"SOCIALPULSE_ALLOCATOR": "system"}, LIB) is None
    assert jemalloc_environment({}, None) is None
