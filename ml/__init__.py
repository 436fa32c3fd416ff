"""Model lifecycle: training, registry, the delivery stages (thresholds, evaluation, gate, approval), export
to PMML and SQL, the model report and notifications."""
