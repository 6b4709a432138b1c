"""Snapshot → tensors → relation-aware GNN, calibration, explanations and a tree baseline.

Only this package imports torch / torch_geometric; it never imports ``store`` (a ``Snapshot``
is the hand-off).
"""
