"""Map model logits to calibrated probabilities, fitted on held-out (validation) labels.

Training weighs the rare fraud class up (``pos_weight``), which shifts and stretches the raw
sigmoid; a calibrator fitted on labels the model did not train on undoes that. Both methods
are non-decreasing in the logit, so rankings (and the monotonicity of social credit in the
relationship-only risk) survive calibration:
- ``platt``: ``sigmoid(a * logit + b)`` with ``a > 0`` (fitted as ``log a``), strictly
  monotone, two numbers; the default, robust with few positive labels.
- ``isotonic``: a non-decreasing step function (ties possible), for larger label sets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import torch
from scipy.special import expit
from sklearn.isotonic import IsotonicRegression

CalibrationMethod = Literal["platt", "isotonic"]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Calibrator:
    """A fitted logit → probability map; ``state()`` is plain JSON for the model artifact."""

    method: CalibrationMethod
    params: dict[str, list[float]]

    @classmethod
    def fit(
        cls, logits: npt.ArrayLike, y: npt.ArrayLike, method: CalibrationMethod = "platt"
    ) -> Calibrator:
        z = np.asarray(logits, dtype=np.float64)
        truth = np.asarray(y, dtype=np.float64)
        if method == "isotonic":
            iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(z, truth)
            return cls(
                "isotonic",
                {"x": iso.X_thresholds_.tolist(), "y": iso.y_thresholds_.tolist()},
            )
        return cls("platt", _fit_platt(z, truth))

    def __call__(self, logits: npt.ArrayLike) -> FloatArray:
        z = np.asarray(logits, dtype=np.float64)
        if self.method == "isotonic":
            return np.interp(z, self.params["x"], self.params["y"])
        a, b = self.params["a"][0], self.params["b"][0]
        return np.asarray(expit(a * z + b), dtype=np.float64)

    def state(self) -> dict[str, Any]:
        return {"method": self.method, "params": self.params}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Calibrator:
        method = state["method"]
        if method not in ("platt", "isotonic"):
            raise ValueError(f"unknown calibration method {method!r}")
        params = {k: [float(v) for v in vs] for k, vs in state["params"].items()}
        return cls(method, params)


def _fit_platt(z: FloatArray, y: FloatArray) -> dict[str, list[float]]:
    logits = torch.from_numpy(z)
    # Platt's smoothed targets keep the slope finite when validation labels are separable
    # (plain 0/1 targets let it run away and saturate probabilities at exactly 0 or 1).
    pos, neg = float(y.sum()), float(len(y) - y.sum())
    target = torch.from_numpy(np.where(y > 0.5, (pos + 1.0) / (pos + 2.0), 1.0 / (neg + 2.0)))
    log_a = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_a, b], lr=0.5, max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            log_a.exp() * logits + b, target
        )
        loss.backward()  # type: ignore[no-untyped-call]
        return loss

    opt.step(closure)  # type: ignore[no-untyped-call]
    return {"a": [log_a.detach().exp().item()], "b": [b.detach().item()]}
