"""Model lifecycle: training, registry, (later) thresholds, evaluation, export, gate and approval."""
