"""Scoring applications with a registered bundle: the feature SQL in DuckDB, then the model.

The features are computed by the same SQL the warehouse used for training (the compiled feature
macro shipped with the version), never re-implemented in pandas, so online and training features
cannot drift apart.
"""

from __future__ import annotations

import threading

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from ml.registry import FEATURE_RELATION, ModelBundle


class FeatureScorer:
    """Thread-safe scorer for one bundle (each thread gets its own DuckDB cursor)."""

    def __init__(self, bundle: ModelBundle) -> None:
        self.bundle = bundle
        self._connection = duckdb.connect()
        self._local = threading.local()
        self._feature_names = list(bundle.loan_book.feature_names)

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        cursor = getattr(self._local, "cursor", None)
        if cursor is None:
            cursor = self._local.cursor = self._connection.cursor()
        return cursor

    def features(self, applications: pa.Table) -> pd.DataFrame:
        """Model inputs for ``applications`` (columns under their loan-book names)."""
        cursor = self._cursor()
        cursor.register(FEATURE_RELATION, applications)
        try:
            frame = cursor.execute(self.bundle.feature_sql).df()
        finally:
            cursor.unregister(FEATURE_RELATION)
        return frame[self._feature_names]

    def probabilities(self, applications: pa.Table) -> np.ndarray:
        """Probability of default for each application, in order."""
        return self.bundle.pipeline.predict_proba(self.features(applications))[:, 1]

    def close(self) -> None:
        self._connection.close()
