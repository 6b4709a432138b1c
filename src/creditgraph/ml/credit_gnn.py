"""The social credit dimension as a small relation-aware graph neural network.

It reads, for an account ``v`` as of a time ``t``, the accounts it is friends with, pays and
is paid by (three relations, separate learned messages) over consenting edges only
(``credit_features.relation_pairs``): each neighbour ``u`` sends a message built from

- ``u``'s repayment record as of ``t`` (obligations resolved before ``t`` only, so an outcome
  never explains itself; the obligation predicted is opened after ``t``),
- ``u``'s payment behaviour (its transfers of the last 182 days before ``t``),
- the mean learned encoding of the records of ``u``'s own contacts *other than* ``v``
  (non-backtracking: ``(sum over N(u) - v's part) / (deg(u) - 1)``), so ``v``'s own record
  never comes back to it through a neighbour,
- ``u``'s degree.

Messages are averaged per relation, joined with each relation's count, and read out as a
default margin. ``v``'s own record and label are never an input: the dimension is
relationship-only. Full-batch training in plain torch (``index_add``), one thread: the graph of
each training cut is small enough (docs/credit.md has the cost at 20k accounts).

An account whose consent is withdrawn has no edge in any relation, so no relationship of it
enters its own output, nor anybody else's.

Explanations: a linear read of the network's margin on the social aggregates (fitted on the
training rows) splits the margin into per-aggregate parts, plus the remainder the network
found beyond them (two-hop and non-linear), so the reasons sum to the margin exactly.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from creditgraph.ml.credit_features import (
    OPEN,
    PRIOR_WEIGHT,
    CreditData,
    FloatArray,
    IntArray,
    _behaviour,
    _record,
    relation_pairs,
    status_at,
)

RELATIONS: tuple[str, ...] = ("friends", "pays", "paid_by")
#: Name of the social block's extra column holding the network's margin.
MARGIN_COLUMN = "network_model"


def record_features(
    data: CreditData, t: float, prior_default: float, prior_late: float
) -> FloatArray:
    """Every account's repayment record as of ``t`` (resolved before ``t`` only)."""
    st = status_at(data, t)
    resolved, _, late, default = _record(data, st)
    n = data.num_accounts
    past_due = np.bincount(data.ob_account[(st == OPEN) & (data.ob_due < t)], minlength=n).astype(
        np.float64
    )
    w = PRIOR_WEIGHT
    return np.column_stack(
        [
            np.log1p(resolved),
            (default + w * prior_default) / (resolved + w),
            (late + w * prior_late) / (resolved + w),
            (default > 0).astype(np.float64),
            (resolved == 0).astype(np.float64),
            np.log1p(past_due),
        ]
    )


def behaviour_features(data: CreditData, t: float) -> FloatArray:
    """Every account's payment behaviour of the last 182 days before ``t``."""
    x = _behaviour(data, t, np.arange(data.num_accounts, dtype=np.int64)).x.copy()
    for j in (0, 1, 4):  # counts and amounts: log scale
        x[:, j] = np.log1p(x[:, j])
    return x


@dataclass(frozen=True)
class CutGraph:
    """What one forward pass needs: node inputs and the edges towards the target rows."""

    rec: Tensor
    beh: Tensor
    all_a: Tensor
    all_b: Tensor
    #: Per relation: (position of the target among the rows, target index, neighbour index).
    rel: tuple[tuple[Tensor, Tensor, Tensor], ...]
    rows: int
    #: Constant per cut (computed once): node inputs [rec, beh, log degree], 1 / (deg - 1)
    #: per node (0 where a node has no other contact) and per relation edge, and per
    #: relation 1 / count and log(1 + count) of each target's neighbours.
    x: Tensor
    other: Tensor
    other_e: tuple[Tensor, ...]
    inv_cnt: tuple[Tensor, ...]
    log_cnt: tuple[Tensor, ...]


def cut_graph(
    data: CreditData,
    t: float,
    rows: IntArray,
    prior_default: float,
    prior_late: float,
    norm: dict[str, list[float]],
) -> CutGraph:
    n = data.num_accounts
    rec = (record_features(data, t, prior_default, prior_late) - norm["rec_mu"]) / norm["rec_sd"]
    beh = (behaviour_features(data, t) - norm["beh_mu"]) / norm["beh_sd"]
    pairs = relation_pairs(data, t)
    a = np.concatenate([pairs[r][0] for r in RELATIONS])
    b = np.concatenate([pairs[r][1] for r in RELATIONS])
    key = np.unique(a * n + b)
    inv = np.full(n, -1, dtype=np.int64)
    inv[rows] = np.arange(len(rows))
    rel = []
    for r in RELATIONS:
        v, u = pairs[r]
        keep = inv[v] >= 0
        rel.append(
            (
                torch.from_numpy(inv[v[keep]]),
                torch.from_numpy(v[keep].astype(np.int64)),
                torch.from_numpy(u[keep].astype(np.int64)),
            )
        )
    deg = np.bincount(key // n, minlength=n).astype(np.float64)
    # u's contacts other than v (v is one of them: the union graph is symmetric).
    other = np.where(deg > 1, 1.0 / np.maximum(deg - 1.0, 1.0), 0.0)
    x = np.column_stack([rec, beh, np.log1p(deg)])
    cnts = [np.bincount(pos.numpy(), minlength=len(rows)).astype(np.float64) for pos, _, _ in rel]

    def f32(a: np.ndarray) -> Tensor:
        return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))

    return CutGraph(
        f32(rec),
        f32(beh),
        torch.from_numpy(key // n),
        torch.from_numpy(key % n),
        tuple(rel),
        len(rows),
        f32(x),
        f32(other[:, None]),
        tuple(f32(other[u.numpy()][:, None]) for _, _, u in rel),
        tuple(f32(1.0 / np.maximum(c, 1.0))[:, None] for c in cnts),
        tuple(f32(np.log1p(c))[:, None] for c in cnts),
    )


class SocialGNN(nn.Module):
    """Two hops, relation-specific messages, mean aggregation, non-backtracking.

    A message ``relu(W_r [rec_u, beh_u, log deg_u] + U_r z_(u without v))`` is linear before
    its ReLU, so both parts are computed per node and only gathered per edge (the cost is a
    few gathers of ``hidden`` numbers per edge)."""

    def __init__(self, n_rec: int, n_beh: int, hidden: int = 16, hop: int = 8) -> None:
        super().__init__()
        self.hop = nn.Linear(n_rec, hop)
        self.node = nn.ModuleList([nn.Linear(n_rec + n_beh + 1, hidden) for _ in RELATIONS])
        self.two = nn.ModuleList([nn.Linear(hop, hidden, bias=False) for _ in RELATIONS])
        self.out1 = nn.Linear(len(RELATIONS) * (hidden + 1), hidden)
        self.out2 = nn.Linear(hidden, 1)
        self.hidden = hidden

    def forward(self, g: CutGraph) -> Tensor:
        # index_select, not x[idx]: its backward is one index_add (advanced indexing's
        # accumulate-put is several times slower on CPU).
        n = g.rec.shape[0]
        p = torch.relu(self.hop(g.rec))
        s = p.new_zeros(n, p.shape[1]).index_add(0, g.all_a, p.index_select(0, g.all_b))
        parts: list[Tensor] = []
        for r, (pos, v, u) in enumerate(g.rel):
            a = self.node[r](g.x)
            q, b = self.two[r](s), self.two[r](p)
            m = torch.relu(
                (a + q * g.other).index_select(0, u) - b.index_select(0, v) * g.other_e[r]
            )
            agg = m.new_zeros(g.rows, self.hidden).index_add(0, pos, m)
            parts += [agg * g.inv_cnt[r], g.log_cnt[r]]
        h = torch.relu(self.out1(torch.cat(parts, 1)))
        out: Tensor = self.out2(h).squeeze(1)
        return out


@dataclass
class SocialGNNModel:
    """A trained network, its input normalisation and the linear read used for reasons."""

    state: dict[str, list[Any]]
    norm: dict[str, list[float]]
    hidden: int
    hop: int
    #: margin ~ sum_j coef_j * (agg_j - mean_j) + intercept over the social aggregates.
    coef: list[float] = field(default_factory=list)
    mean: list[float] = field(default_factory=list)
    intercept: float = 0.0
    metrics: dict[str, Any] = field(default_factory=dict)

    def network(self) -> SocialGNN:
        net = SocialGNN(len(self.norm["rec_mu"]), len(self.norm["beh_mu"]), self.hidden, self.hop)
        state = {k: torch.tensor(v, dtype=torch.float32) for k, v in self.state.items()}
        net.load_state_dict(state)
        net.eval()
        return net

    def margins(
        self, data: CreditData, t: float, rows: IntArray, prior_default: float, prior_late: float
    ) -> FloatArray:
        g = cut_graph(data, t, rows, prior_default, prior_late, self.norm)
        with torch.no_grad(), _OneThread():
            out = self.network()(g).double().numpy()
        return np.asarray(out, dtype=np.float64)

    def contributions(self, x: FloatArray) -> FloatArray:
        """Rows x (aggregates + margin column + expected): parts of each row's margin."""
        agg, margin = x[:, :-1], x[:, -1]
        lin = (agg - np.asarray(self.mean)) * np.asarray(self.coef)
        rest = margin - self.intercept - lin.sum(axis=1)
        return np.column_stack([lin, rest, np.full(len(x), self.intercept)])


class _Adam:
    """Adam (with L2 weight decay, as ``torch.optim.Adam``): written out because the first
    ``torch.optim`` step imports ``torch._dynamo``, which costs tens of seconds here, more
    than this whole training."""

    def __init__(
        self,
        params: list[nn.Parameter],
        lr: float,
        weight_decay: float,
        betas: tuple[float, float] = (0.9, 0.999),
    ) -> None:
        self.params, self.lr, self.wd, self.betas = params, lr, weight_decay, betas
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]
        self.k = 0

    @torch.no_grad()
    def step(self) -> None:
        self.k += 1
        b1, b2 = self.betas
        c1, c2 = 1 - b1**self.k, 1 - b2**self.k
        for p, m, v in zip(self.params, self.m, self.v, strict=True):
            if p.grad is None:
                continue
            g = p.grad + self.wd * p
            m.mul_(b1).add_(g, alpha=1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            p.sub_(self.lr * (m / c1) / ((v / c2).sqrt() + 1e-8))


class _OneThread:
    """torch on one thread for the duration (the service shares two cores)."""

    def __enter__(self) -> None:
        self.before = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc: object) -> None:
        torch.set_num_threads(self.before)


def _norm(xs: Sequence[FloatArray]) -> tuple[list[float], list[float]]:
    x = np.vstack(xs)
    sd = x.std(axis=0)
    return x.mean(axis=0).tolist(), np.where(sd > 1e-9, sd, 1.0).tolist()


def train_social_gnn(
    data: CreditData,
    cuts: Sequence[tuple[float, IntArray, FloatArray, np.ndarray]],
    prior_default: float,
    prior_late: float,
    *,
    seed: int,
    max_epochs: int = 200,
    patience: int = 20,
    lr: float = 0.01,
    hidden: int = 16,
    hop: int = 8,
) -> tuple[SocialGNNModel, list[FloatArray]]:
    """Train on ``cuts`` = (t, target rows, labels, validation mask) and return the model
    and its margin for every row of every cut (early stopping on the validation rows)."""
    started, cpu = time.perf_counter(), time.process_time()
    recs = [record_features(data, t, prior_default, prior_late) for t, *_ in cuts]
    behs = [behaviour_features(data, t) for t, *_ in cuts]
    rec_mu, rec_sd = _norm(recs)
    beh_mu, beh_sd = _norm(behs)
    norm = {"rec_mu": rec_mu, "rec_sd": rec_sd, "beh_mu": beh_mu, "beh_sd": beh_sd}
    graphs = [cut_graph(data, t, rows, prior_default, prior_late, norm) for t, rows, *_ in cuts]
    ys = [torch.from_numpy(y.astype(np.float32)) for _, _, y, _ in cuts]
    vals = [torch.from_numpy(v.astype(bool)) for *_, v in cuts]
    n_train = max(sum(int((~v).sum()) for v in vals), 1)
    n_val = max(sum(int(v.sum()) for v in vals), 1)
    torch.manual_seed(seed)
    with _OneThread():
        net = SocialGNN(len(rec_mu), len(beh_mu), hidden, hop)
        opt = _Adam(list(net.parameters()), lr=lr, weight_decay=1e-4)
        loss_fn = nn.BCEWithLogitsLoss(reduction="sum")
        best = (math.inf, 0, {k: v.clone() for k, v in net.state_dict().items()})
        epochs = 0
        for epoch in range(max_epochs):
            epochs = epoch + 1
            net.train()
            net.zero_grad(set_to_none=True)
            val_loss = 0.0
            total = torch.zeros(())
            for g, y, v in zip(graphs, ys, vals, strict=True):
                out = net(g)
                total = total + loss_fn(out[~v], y[~v])
                val_loss += float(loss_fn(out[v].detach(), y[v]))
            (total / n_train).backward()  # type: ignore[no-untyped-call]
            opt.step()
            val_loss /= n_val
            if val_loss < best[0] - 1e-5:
                best = (val_loss, epoch, {k: t.clone() for k, t in net.state_dict().items()})
            elif epoch - best[1] >= patience:
                break
        net.load_state_dict(best[2])
        net.eval()
        with torch.no_grad():
            margins = [net(g).double().numpy() for g in graphs]
    model = SocialGNNModel(
        state={k: v.tolist() for k, v in net.state_dict().items()},
        norm=norm,
        hidden=hidden,
        hop=hop,
        metrics={
            "epochs": epochs,
            "best_epoch": best[1] + 1,
            "val_logloss": best[0],
            "edges": sum(len(g.all_a) for g in graphs),
            "train_s": round(time.perf_counter() - started, 1),
            # CPU time on one thread: what it costs on an idle core.
            "cpu_s": round(time.process_time() - cpu, 1),
        },
    )
    return model, [np.asarray(m, dtype=np.float64) for m in margins]


def fit_linear_read(model: SocialGNNModel, agg: FloatArray, margin: FloatArray) -> None:
    """The linear read of the margin on the aggregates (ridge on standardised columns)."""
    mu = agg.mean(axis=0)
    sd = np.where(agg.std(axis=0) > 1e-9, agg.std(axis=0), 1.0)
    z = (agg - mu) / sd
    c = float(margin.mean())
    beta = np.linalg.solve(z.T @ z + 1.0 * np.eye(z.shape[1]), z.T @ (margin - c))
    model.coef = (beta / sd).tolist()
    model.mean = mu.tolist()
    model.intercept = c
    resid = margin - c - z @ beta
    total = float(((margin - c) ** 2).sum())
    model.metrics["linear_read_r2"] = 1.0 - float((resid**2).sum()) / max(total, 1e-12)
