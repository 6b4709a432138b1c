"""Transfer-level outcomes: causal features, the transfer model, its decision and card."""
