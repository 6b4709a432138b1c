"""The ``creditgraph`` console script: sets the memory allocator up, then runs the CLI.

Full-batch training and scoring allocate and free gigabyte-sized tensors every epoch; with
glibc's allocator the page faults of returning and re-acquiring that memory cost more than
the arithmetic (a 1M-account training epoch: 28 s with glibc, 9.3 s with jemalloc,
docs/benchmarks.md). So the batch commands (``train``, ``score``, ``demo``) re-execute
themselves once with jemalloc preloaded when the library is installed (Debian/Ubuntu
package ``libjemalloc2``; ``scripts/bootstrap.sh`` and the Dockerfile install it), configured
never to hand memory back while the job runs. Long-running commands (``serve``) keep the
default allocator, which returns memory between requests.

``CREDITGRAPH_ALLOCATOR=system`` turns this off; an ``LD_PRELOAD`` set by the caller is
respected. Only ``os`` and ``sys`` are imported before the re-exec, so it costs a few ms.
"""

from __future__ import annotations

import contextlib
import os
import sys

#: Where distributions put jemalloc 5 (Debian/Ubuntu multiarch, then generic prefixes).
CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
    "/usr/lib/aarch64-linux-gnu/libjemalloc.so.2",
    "/usr/lib64/libjemalloc.so.2",
    "/usr/lib/libjemalloc.so.2",
    "/usr/local/lib/libjemalloc.so.2",
)
#: Transparent huge pages and no decay: a batch job reuses its peak memory every epoch.
MALLOC_CONF = "thp:always,metadata_thp:always,dirty_decay_ms:-1,muzzy_decay_ms:-1"
BATCH_COMMANDS = frozenset({"train", "score", "demo"})
#: Set in the re-executed process, so it never loops.
MARKER = "CREDITGRAPH_ALLOCATOR_ACTIVE"


def jemalloc_path() -> str | None:
    return next((p for p in CANDIDATES if os.path.exists(p)), None)


def allocator_env(argv: list[str], env: dict[str, str]) -> dict[str, str] | None:
    """The environment to re-execute ``argv`` with, or None to run as is."""
    if env.get("CREDITGRAPH_ALLOCATOR", "auto") == "system" or env.get(MARKER):
        return None
    if "jemalloc" in env.get("LD_PRELOAD", ""):
        return None
    # The command is the first word that is not an option (the global options take no value).
    command = next((a for a in argv[1:] if not a.startswith("-")), None)
    if command not in BATCH_COMMANDS:
        return None
    lib = jemalloc_path()
    if lib is None:
        return None
    preload = " ".join(p for p in (lib, env.get("LD_PRELOAD", "")) if p)
    return {
        **env,
        "LD_PRELOAD": preload,
        "MALLOC_CONF": env.get("MALLOC_CONF", MALLOC_CONF),
        MARKER: lib,
    }


def main() -> None:
    env = allocator_env(sys.argv, dict(os.environ))
    if env is not None:
        # If the re-exec fails (an unusual sandbox), run on with the allocator we have.
        with contextlib.suppress(OSError):
            os.execve(
                sys.executable, [sys.executable, "-m", "creditgraph.entry", *sys.argv[1:]], env
            )
    from creditgraph.cli import app

    app(prog_name="creditgraph")


if __name__ == "__main__":
    main()
