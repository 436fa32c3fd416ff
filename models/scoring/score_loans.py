"""In-warehouse batch scoring: the champion's compiled SQL over the loan book's features.

A Python model because the query is an artifact of the approved model version (compiled from its
PMML when it was approved, see ml.delivery.deploy_prod.install_champion_sql), not a file of this
project: dbt reads it from var('champion_sql_path') and runs it inside the warehouse. Every row
records the model version that scored it. With no champion yet, the table is empty.
"""


from pathlib import Path


def model(dbt, session):
    dbt.config(materialized="table")
    features = dbt.ref("feat_loans")
    sql_path = dbt.config.get("champion_sql_path") or ""
    version = dbt.config.get("champion_version") or ""
    features.create_view("model_features", replace=True)
    if not sql_path:
        return session.sql(
            "select loan_id, fairness_group, cast(null as double) as probability, "
            "cast(null as varchar) as model_version from model_features where false"
        )
    scored = session.sql(Path(sql_path).read_text())
    return scored.project(f"loan_id, fairness_group, probability, '{version}' as model_version")
