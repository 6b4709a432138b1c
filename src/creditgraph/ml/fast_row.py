"""One row through a LightGBM booster without ``Booster.predict``'s per-call set-up.

``Booster.predict`` builds a predictor, parses its parameters and converts the input on
every call: ~100-300 µs of CPU for a request's single row, several times the trees
themselves. LightGBM's C API has a path for exactly this case,
``LGBM_BoosterPredictForMatSingleRowFast`` over a configuration prepared once
(``...FastInit``); ``FastRow`` wraps it with ctypes. The prepared configuration holds one
row's buffers, so calls are serialised by a lock (each is microseconds).
``tests/unit/test_fast_row.py`` checks it gives ``Booster.predict``'s numbers.
"""

from __future__ import annotations

import ctypes
import threading
from typing import Any

import lightgbm as lgb
import numpy as np
from lightgbm.basic import _safe_call
from lightgbm.libpath import _LIB  # the loaded library, as lightgbm.basic uses it

F64 = np.ndarray[Any, np.dtype[np.float64]]

_RAW_SCORE = 1  # C_API_PREDICT_RAW_SCORE
_LEAF_INDEX = 2  # C_API_PREDICT_LEAF_INDEX
_CONTRIB = 3  # C_API_PREDICT_CONTRIB
_FLOAT64 = 1  # C_API_DTYPE_FLOAT64


class FastRow:
    """Raw margin (or TreeSHAP contributions, or the leaf reached in each tree) of one float64
    row of ``ncol`` inputs."""

    def __init__(
        self, booster: lgb.Booster, ncol: int, *, contrib: bool = False, leaves: bool = False
    ) -> None:
        """``leaves``: the leaf index per tree (as ``predict(pred_leaf=True)``, floats)."""
        if contrib and leaves:
            raise ValueError("FastRow gives contributions or leaves, not both")
        self._booster = booster  # keeps the handle alive
        self.ncol = ncol
        self.contrib = contrib
        if contrib:
            self._width = (ncol + 1) * booster.num_model_per_iteration()
        else:
            self._width = booster.num_trees() if leaves else 1
        kind = _CONTRIB if contrib else _LEAF_INDEX if leaves else _RAW_SCORE
        self._out = np.zeros(self._width, np.float64)
        self._len = ctypes.c_int64(0)
        self._row = np.zeros(ncol, np.float64)
        self._handle = ctypes.c_void_p()
        # As ``Booster.predict`` with num_iteration=None: the best iteration when known.
        _safe_call(
            _LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
                booster._handle,
                ctypes.c_int(kind),
                ctypes.c_int(0),
                ctypes.c_int(booster.best_iteration),
                ctypes.c_int(_FLOAT64),
                ctypes.c_int32(ncol),
                ctypes.c_char_p(b"num_threads=1"),
                ctypes.byref(self._handle),
            )
        )
        self._lock = threading.Lock()
        # The buffers live as long as this object: their C pointers are made once.
        self._row_ptr = self._row.ctypes.data_as(ctypes.c_void_p)
        self._out_ptr = self._out.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
        self._len_ref = ctypes.byref(self._len)

    def __call__(self, row: F64) -> F64:
        """The result for ``row`` (shape ``(ncol,)`` or ``(1, ncol)``), a fresh array."""
        with self._lock:
            self._row[:] = np.ravel(row)
            _safe_call(
                _LIB.LGBM_BoosterPredictForMatSingleRowFast(
                    self._handle, self._row_ptr, self._len_ref, self._out_ptr
                )
            )
            return self._out[: self._len.value].copy()

    def __del__(self) -> None:
        handle = getattr(self, "_handle", None)
        if handle is not None and handle.value:
            _LIB.LGBM_FastConfigFree(handle)


class FastRows:
    """Raw margins of several float64 rows of ``ncol`` inputs in one call
    (``LGBM_BoosterPredictForMat``, one thread): the trees are walked for each row back to
    back, so after the first row they are read from the CPU caches. Row for row the same
    numbers as ``FastRow`` (``tests/unit/test_fast_row.py``)."""

    def __init__(self, booster: lgb.Booster, ncol: int) -> None:
        if booster.num_model_per_iteration() != 1:
            raise ValueError("FastRows gives one margin per row: not for multiclass boosters")
        self._booster = booster  # keeps the handle alive
        self.ncol = ncol
        self._iterations = ctypes.c_int(booster.best_iteration)
        self._params = ctypes.c_char_p(b"num_threads=1")
        self._lock = threading.Lock()

    def __call__(self, rows: F64) -> F64:
        """The margin of each row of ``rows`` (shape ``(n, ncol)``), a fresh array."""
        data = np.ascontiguousarray(rows, dtype=np.float64).reshape(-1, self.ncol)
        out = np.zeros(len(data), np.float64)
        if not len(data):
            return out
        n = ctypes.c_int64(0)
        with self._lock:
            _safe_call(
                _LIB.LGBM_BoosterPredictForMat(
                    self._booster._handle,
                    data.ctypes.data_as(ctypes.c_void_p),
                    ctypes.c_int(_FLOAT64),
                    ctypes.c_int32(len(data)),
                    ctypes.c_int32(self.ncol),
                    ctypes.c_int(1),  # row major
                    ctypes.c_int(_RAW_SCORE),
                    ctypes.c_int(0),
                    self._iterations,
                    self._params,
                    ctypes.byref(n),
                    out.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
                )
            )
        if n.value != len(data):
            raise RuntimeError(f"LightGBM gave {n.value} margins for {len(data)} rows")
        return out
