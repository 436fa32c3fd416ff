"""One model artifact everywhere: the fitted pipeline goes to PMML, and the PMML compiles to SQL.

* :mod:`ml.export.pmml` writes the fitted scikit-learn pipeline as PMML (sklearn2pmml, needs Java).
* :mod:`ml.export.sql` compiles that PMML to a sqlglot expression tree, so batch scoring in the
  warehouse, the API and any other SQL dialect run the same model.

The submodules are imported on their own: the SQL side does not pull in sklearn2pmml.
"""
