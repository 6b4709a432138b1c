"""A LightGBM booster's raw margin for one row, compiled to machine code with lleaves.

``FastRow`` (``ml.fast_row``) already skips ``Booster.predict``'s per-call set-up, but the
trees are still walked by LightGBM's generic node loop: at 1M accounts the transfer model
(300 trees of up to 31 leaves) spends most of its share of a payment request there.
lleaves turns the model text into straight-line LLVM code (one branch per split,
categorical splits as bitset tests). Compiled without cache blocking (one row per call),
the trees are summed in LightGBM's order: the same margin, bit for bit, in a fraction of
the time (docs/benchmarks.md). It is called through its compiled entry point with buffers
made once, as ``FastRow`` calls LightGBM's C API.

Compiling takes seconds (a 1M transfer model: tens of seconds) of mostly Python IR
building, so it never runs in the serving process: ``ForestCompile`` starts a niced child
process (``python -m creditgraph.ml.compiled``) that writes the shared object into
``cache_dir``, named by a hash of the model text, this machine's CPU and the compiler
versions; the serving process polls it at request time (one ``waitpid`` while pending) and
swaps the compiled margin in once it is there and agrees with LightGBM on probe rows. A
later load of the same model on the same machine reads the cached object at once. Any
failure keeps the LightGBM path, which is always right. ``tests/unit/test_compiled.py``.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

F64 = np.ndarray[Any, np.dtype[np.float64]]
#: The child's niceness: compiling yields the cores to the requests it will speed up.
COMPILE_NICE = 10
#: Largest |compiled - LightGBM| margin accepted on the probe rows.
TOLERANCE = 1e-9

log = logging.getLogger(__name__)


class CompiledMargin:
    """Raw margin of one float64 row of ``ncol`` inputs through a compiled forest."""

    def __init__(self, model: Any, ncol: int) -> None:
        self._model = model  # keeps the compiled code alive
        self.ncol = ncol
        self._entry = model._c_entry_func  # forest_root(double* rows, double* out, start, end)
        self._row = np.zeros(ncol, np.float64)
        self._out = np.zeros(1, np.float64)
        self._row_ptr = self._row.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
        self._out_ptr = self._out.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
        # The buffers are shared: one row at a time (each call is microseconds).
        self._lock = threading.Lock()

    def __call__(self, row: F64) -> F64:
        """The margin for ``row`` (shape ``(ncol,)`` or ``(1, ncol)``), a fresh ``(1,)`` array."""
        with self._lock:
            self._row[:] = np.ravel(row)
            self._entry(self._row_ptr, self._out_ptr, 0, 1)
            return self._out.copy()


def _paths(model_text: str, cache_dir: Path) -> tuple[Path, Path]:
    """The model text's and the shared object's paths in ``cache_dir`` for this machine."""
    from llvmlite import binding as llvm

    llvm.initialize_native_target()
    cpu = f"{llvm.get_host_cpu_name()}|{llvm.get_host_cpu_features().flatten()}"
    parts = (model_text, cpu, version("lleaves"), version("llvmlite"), "raw-score,unblocked")
    key = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:20]
    return cache_dir / f"forest-{key}.txt", cache_dir / f"forest-{key}.so"


def _model(text: Path, so: Path) -> Any:
    """The lleaves model of ``text`` compiled into (or read from) ``so``."""
    import lleaves

    model = lleaves.Model(model_file=str(text))
    # One row per call: no cache blocking, so the trees add up in LightGBM's order.
    model.compile(cache=str(so), raw_score=True, fblocksize=max(1, model.num_trees()))
    return model


def load(text: Path, so: Path, ncol: int) -> CompiledMargin:
    model = _model(text, so)
    if model.num_feature() != ncol:
        raise ValueError(f"the compiled model reads {model.num_feature()} inputs, not {ncol}")
    return CompiledMargin(model, ncol)


class ForestCompile:
    """The compiled margin of one model, from the cache or from a background compile.

    ``poll()`` returns it once available and verified against ``reference`` (the LightGBM
    margin of a row), None while pending or after a failure (then ``done`` is True and the
    caller keeps LightGBM)."""

    def __init__(
        self,
        model_text: str,
        ncol: int,
        cache_dir: Path,
        reference: Callable[[F64], F64],
    ) -> None:
        self.ncol = ncol
        self.done = False
        self._reference = reference
        self._proc: subprocess.Popen[bytes] | None = None
        self._result: CompiledMargin | None = None
        self._lock = threading.Lock()  # one poller finishes; the others answer None meanwhile
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
            self._text, self._so = _paths(model_text, cache_dir)
            if not self._text.exists():
                _write_atomic(self._text, model_text.encode())
            if self._so.exists():
                self._finish()
            else:
                # The child's errors go to a file: a pipe nobody reads could fill and stall it.
                with open(self._so.with_suffix(".log"), "wb") as err:
                    self._proc = subprocess.Popen(
                        [sys.executable, "-m", __name__, str(self._text), str(self._so)],
                        stdin=subprocess.DEVNULL,
                        stdout=err,
                        stderr=err,
                    )
        except Exception as e:  # lleaves missing, cache not writable...
            self._fail(e)

    def poll(self) -> CompiledMargin | None:
        if self.done:
            return self._result
        if not self._lock.acquire(blocking=False):
            return None
        try:
            proc = self._proc
            if proc is not None and proc.poll() is not None:
                self._proc = None
                log_file = self._so.with_suffix(".log")
                if proc.returncode == 0:
                    log_file.unlink(missing_ok=True)
                    self._finish()
                else:
                    err = log_file.read_text(errors="replace")[-500:]
                    self._fail(RuntimeError(f"compiler exited {proc.returncode}: {err}"))
        finally:
            self._lock.release()
        return self._result

    def wait(self, timeout: float | None = None) -> CompiledMargin | None:
        """Block until the compile ends (tests, benchmarks); the result as ``poll``."""
        proc = self._proc
        if proc is not None:
            proc.wait(timeout)
        with self._lock:
            pass  # a poll finishing meanwhile
        return self.poll()

    def close(self) -> None:
        """Stop a compile still running (its cache file is never half-written)."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            proc.wait()
        self.done = True

    def _finish(self) -> None:
        try:
            compiled = load(self._text, self._so, self.ncol)
            rng = np.random.default_rng(0)
            for row in rng.normal(0.0, 3.0, size=(16, self.ncol)):
                diff = abs(float(compiled(row)[0]) - float(self._reference(row)[0]))
                if not diff <= TOLERANCE:
                    raise ValueError(f"compiled margin differs from LightGBM's by {diff:g}")
        except Exception as e:
            self._fail(e)
            return
        self._result = compiled
        self.done = True

    def _fail(self, e: BaseException) -> None:
        log.warning("compiled trees unavailable, LightGBM walks them: %s", e)
        self._result = None
        self.done = True


def _write_atomic(path: Path, data: bytes) -> None:
    # Written beside, then renamed: a concurrent reader never sees half a file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _main(text: str, so: str) -> None:
    os.nice(COMPILE_NICE)
    fd, tmp = tempfile.mkstemp(dir=Path(so).parent, prefix=Path(so).name, suffix=".part")
    os.close(fd)
    os.unlink(tmp)  # lleaves writes the cache only where no file is
    try:
        _model(Path(text), Path(tmp))
        os.replace(tmp, so)
    finally:
        Path(tmp).unlink(missing_ok=True)


if __name__ == "__main__":
    _main(sys.argv[1], sys.argv[2])
