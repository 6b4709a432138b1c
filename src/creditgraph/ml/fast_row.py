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
_CONTRIB = 3  # C_API_PREDICT_CONTRIB
_FLOAT64 = 1  # C_API_DTYPE_FLOAT64


class FastRow:
    """Raw margin (or TreeSHAP contributions) of one float64 row of ``ncol`` inputs."""

    def __init__(self, booster: lgb.Booster, ncol: int, *, contrib: bool = False) -> None:
        self._booster = booster  # keeps the handle alive
        self.ncol = ncol
        self.contrib = contrib
        self._width = (ncol + 1) * booster.num_model_per_iteration() if contrib else 1
        self._out = np.zeros(self._width, np.float64)
        self._len = ctypes.c_int64(0)
        self._row = np.zeros(ncol, np.float64)
        self._handle = ctypes.c_void_p()
        # As ``Booster.predict`` with num_iteration=None: the best iteration when known.
        _safe_call(
            _LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
                booster._handle,
                ctypes.c_int(_CONTRIB if contrib else _RAW_SCORE),
                ctypes.c_int(0),
                ctypes.c_int(booster.best_iteration),
                ctypes.c_int(_FLOAT64),
                ctypes.c_int32(ncol),
                ctypes.c_char_p(b"num_threads=1"),
                ctypes.byref(self._handle),
            )
        )
        self._lock = threading.Lock()
        # The call's arguments, built once (ctypes wrappers cost microseconds each call).
        self._fn = _LIB.LGBM_BoosterPredictForMatSingleRowFast
        self._args = (
            self._handle,
            self._row.ctypes.data_as(ctypes.c_void_p),
            ctypes.byref(self._len),
            self._out.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
        )

    def __call__(self, row: F64) -> F64:
        """The result for ``row`` (shape ``(ncol,)`` or ``(1, ncol)``), a fresh array."""
        with self._lock:
            self._row[:] = np.ravel(row)
            _safe_call(self._fn(*self._args))
            return self._out[: self._len.value].copy()

    def __del__(self) -> None:
        handle = getattr(self, "_handle", None)
        if handle is not None and handle.value:
            _LIB.LGBM_FastConfigFree(handle)
