"""The console script's allocator set-up: which commands re-execute under jemalloc, and when
they must not (already preloaded, switched off, a long-running server, no library)."""

from __future__ import annotations

import pytest

from creditgraph import entry

LIB = "/opt/lib/libjemalloc.so.2"


@pytest.fixture
def jemalloc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(entry, "jemalloc_path", lambda: LIB)


@pytest.mark.usefixtures("jemalloc")
@pytest.mark.parametrize(
    "argv", [["creditgraph", "train"], ["creditgraph", "-v", "score", "--out", "s.csv"]]
)
def test_batch_commands_re_execute_with_jemalloc_preloaded(argv: list[str]) -> None:
    env = entry.allocator_env(argv, {"PATH": "/bin", "LD_PRELOAD": "/other.so"})
    assert env is not None
    assert env["LD_PRELOAD"] == f"{LIB} /other.so"
    assert env["MALLOC_CONF"] == entry.MALLOC_CONF
    assert env[entry.MARKER] == LIB
    assert env["PATH"] == "/bin"


@pytest.mark.usefixtures("jemalloc")
@pytest.mark.parametrize(
    ("argv", "env"),
    [
        (["creditgraph", "serve"], {}),
        # "score" is a file name here: the command is "import".
        (["creditgraph", "import", "links", "score"], {}),
        (["creditgraph", "train"], {"CREDITGRAPH_ALLOCATOR": "system"}),
        (["creditgraph", "train"], {entry.MARKER: LIB}),
        (["creditgraph", "train"], {"LD_PRELOAD": "/usr/lib/libjemalloc.so.2"}),
    ],
)
def test_no_re_execution_where_it_would_be_wrong(argv: list[str], env: dict[str, str]) -> None:
    assert entry.allocator_env(argv, env) is None


def test_without_the_library_the_command_runs_as_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(entry, "jemalloc_path", lambda: None)
    assert entry.allocator_env(["creditgraph", "train"], {}) is None


def test_a_user_malloc_conf_is_kept(jemalloc: None) -> None:
    env = entry.allocator_env(["creditgraph", "train"], {"MALLOC_CONF": "narenas:2"})
    assert env is not None
    assert env["MALLOC_CONF"] == "narenas:2"
