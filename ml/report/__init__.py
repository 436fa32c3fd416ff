"""The model report: what an approver reads before deciding on a candidate version.

One self-contained HTML page per version (:mod:`ml.report.page`): both policies' cost and FPR gap,
per-group FPR and TPR with exact intervals, the cost curve, ROC, calibration, feature importance,
the monotone-direction checks the loan-book contract declares, and the comparison with the
champion on the same test rows. The numbers the gate judged are read from the evaluation tables
(:mod:`ml.report.content`); the rest is computed on the test rows (:mod:`ml.report.compute`).
The request-approval stage writes it, logs it to the version's MLflow run and links it in the
approval request; ``lendguard report VERSION`` writes it again (:mod:`ml.report.writer`).

The package imports nothing itself, so its modules can import one another without a cycle.
"""
