"""The PMML→SQL compiler on small hand-written documents whose answers are known, and its refusals."""

from __future__ import annotations

import math
import random

import duckdb
import numpy as np
import pandas as pd
import pytest
import sqlglot
from sqlglot import exp

from ml.export.sql import LINK_BOUND, UnsupportedPMMLError, compile_pmml, to_sql
from tests.unit.ml.export.support import Exported

HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4"><Header/>'
DICTIONARY = """
<DataDictionary>
  <DataField name="y" optype="categorical" dataType="integer"><Value value="0"/><Value value="1"/></DataField>
  <DataField name="x" optype="continuous" dataType="double"/>
  <DataField name="c" optype="categorical" dataType="string"><Value value="a"/><Value value="b"/></DataField>
</DataDictionary>"""
LOGIT = """
<RegressionModel functionName="classification" normalizationMethod="logit">
  <MiningSchema>
    <MiningField name="y" usageType="target"/>
    <MiningField name="x" missingValueReplacement="2.0" missingValueTreatment="asMedian"/>
    <MiningField name="c" invalidValueTreatment="asIs"/>
  </MiningSchema>
  <LocalTransformations>
    <DerivedField name="scaled(x)" optype="continuous" dataType="double">
      <Apply function="/">
        <Apply function="-"><FieldRef field="x"/><Constant dataType="double">1.0</Constant></Apply>
        <Constant dataType="double">4.0</Constant>
      </Apply>
    </DerivedField>
  </LocalTransformations>
  <RegressionTable intercept="0.5" targetCategory="1">
    <NumericPredictor name="scaled(x)" coefficient="2.0"/>
    <CategoricalPredictor name="c" value="a" coefficient="1.0"/>
    <CategoricalPredictor name="c" value="b" coefficient="-1.0"/>
  </RegressionTable>
  <RegressionTable intercept="0.0" targetCategory="0"/>
</RegressionModel>"""


def document(model: str) -> str:
    return f"{HEAD}{DICTIONARY}{model}</PMML>"


def tree(nodes: str, strategy: str = "defaultChild") -> str:
    return f"""
<TreeModel functionName="regression" missingValueStrategy="{strategy}" splitCharacteristic="binarySplit">
  <MiningSchema><MiningField name="x"/></MiningSchema>
  {nodes}
</TreeModel>"""


def split(value: str, default: str = "2") -> str:
    """A stump on x: 0 at or below ``value``, 1 above; a missing x goes to node ``default``."""
    return f"""
<Node id="0" defaultChild="{default}"><True/>
  <Node id="1" score="0.0"><SimplePredicate field="x" operator="lessOrEqual" value="{value}"/></Node>
  <Node id="2" score="1.0"><SimplePredicate field="x" operator="greaterThan" value="{value}"/></Node>
</Node>"""


def chain(*trees: str) -> str:
    """A classifier as sklearn2pmml writes boosting: a sum of trees, then a logit on the sum."""
    return f"""
<MiningModel functionName="classification">
  <MiningSchema><MiningField name="y" usageType="target"/><MiningField name="x"/></MiningSchema>
  <Segmentation multipleModelMethod="modelChain" missingPredictionTreatment="returnMissing">
    <Segment id="1"><True/>
      <MiningModel functionName="regression">
        <MiningSchema><MiningField name="x"/></MiningSchema>
        <Output><OutputField name="decision" optype="continuous" dataType="double" isFinalResult="false"/></Output>
        <Segmentation multipleModelMethod="sum" missingPredictionTreatment="returnMissing">
          {"".join(f'<Segment id="{i}"><True/>{body}</Segment>' for i, body in enumerate(trees, 1))}
        </Segmentation>
      </MiningModel>
    </Segment>
    <Segment id="2"><True/>
      <RegressionModel functionName="classification" normalizationMethod="logit">
        <MiningSchema><MiningField name="y" usageType="target"/><MiningField name="decision"/></MiningSchema>
        <RegressionTable intercept="0.0" targetCategory="1"><NumericPredictor name="decision" coefficient="1.0"/>
        </RegressionTable>
        <RegressionTable intercept="0.0" targetCategory="0"/>
      </RegressionModel>
    </Segment>
  </Segmentation>
</MiningModel>"""


def score(pmml: str, rows: pd.DataFrame, **options: object) -> np.ndarray:
    query = compile_pmml(pmml, relation="rows", keep=["id"], **options)  # type: ignore[arg-type]
    with duckdb.connect() as con:
        con.register("rows", rows)
        scored = con.execute(to_sql(query)).df()
    return scored.set_index("id").loc[rows["id"], "probability"].to_numpy(dtype=float)


def sigmoid(value: float) -> float:
    return 1 / (1 + math.exp(-value))


def rows(x: list[float | None], c: list[str | None] | None = None) -> pd.DataFrame:
    return pd.DataFrame({"id": range(len(x)), "x": pd.array(x, dtype="Float64"), "c": c or ["a"] * len(x)})


# ----- known answers -----------------------------------------------------------------------------
def test_logistic_regression_known_answers() -> None:
    given = rows([5.0, None, 5.0, 5.0, 5.0], ["a", "a", "b", "unseen", None])
    # scaled(x) = (x - 1) / 4; a missing x is replaced by 2.0; an unseen or missing category adds 0.
    expected = [
        sigmoid(0.5 + 2.0 + 1.0),
        sigmoid(0.5 + 0.5 + 1.0),
        sigmoid(0.5 + 2.0 - 1.0),
        sigmoid(0.5 + 2.0),
        sigmoid(0.5 + 2.0),
    ]
    np.testing.assert_allclose(score(document(LOGIT), given), expected, rtol=0, atol=1e-15)


def test_the_other_class_is_the_complement() -> None:
    given = rows([0.0, 3.0, 8.0])
    one, zero = score(document(LOGIT), given), score(document(LOGIT), given, positive="0")
    np.testing.assert_allclose(one + zero, 1.0, rtol=0, atol=1e-15)
    with pytest.raises(ValueError, match="positive class"):
        score(document(LOGIT), given, positive="2")


def test_binary_softmax_is_the_logistic_of_the_difference() -> None:
    softmax = LOGIT.replace('normalizationMethod="logit"', 'normalizationMethod="softmax"').replace(
        '<RegressionTable intercept="0.0" targetCategory="0"/>',
        '<RegressionTable intercept="0.25" targetCategory="0"/>',
    )
    given = rows([5.0])
    linear = 0.5 + 2.0 + 1.0
    expected = math.exp(linear) / (math.exp(linear) + math.exp(0.25))
    np.testing.assert_allclose(score(document(softmax), given), [expected], rtol=0, atol=1e-15)


def test_tree_routes_missing_values_to_the_default_child() -> None:
    given = rows([1.0, 2.0, None])
    # On the threshold goes left (lessOrEqual); missing goes to the default child.
    expected_right = [sigmoid(0.0), sigmoid(1.0), sigmoid(1.0)]
    np.testing.assert_array_equal(score(document(chain(tree(split("1.0")))), given), expected_right)
    expected_left = [sigmoid(0.0), sigmoid(1.0), sigmoid(0.0)]
    np.testing.assert_array_equal(score(document(chain(tree(split("1.0", default="1")))), given), expected_left)


def test_tree_without_a_missing_value_strategy_returns_null() -> None:
    """missingValueStrategy="none": unknown counts as false, no child is true: a NULL prediction."""
    scored = score(document(chain(tree(split("1.0"), strategy="none"))), rows([0.0, None]))
    assert scored[0] == sigmoid(0.0)
    assert np.isnan(scored[1])


COMPACT = """
<MiningModel functionName="classification" algorithmName="LightGBM">
  <MiningSchema>
    <Extension name="X-FeatureImportances"><InlineTable/></Extension>
    <MiningField name="y" usageType="target"/><MiningField name="x"/>
    <MiningField name="c" invalidValueTreatment="asIs"/>
  </MiningSchema>
  <Segmentation multipleModelMethod="modelChain" missingPredictionTreatment="returnMissing">
    <Segment id="1"><True/>
      <MiningModel functionName="regression">
        <MiningSchema><MiningField name="x"/><MiningField name="c"/></MiningSchema>
        <Output><OutputField name="value" optype="continuous" dataType="double" isFinalResult="false"/></Output>
        <LocalTransformations>
          <DerivedField name="c=a" optype="continuous" dataType="double">
            <NormDiscrete field="c" value="a"/>
          </DerivedField>
        </LocalTransformations>
        <Segmentation multipleModelMethod="sum" missingPredictionTreatment="returnMissing">
          <Segment id="1"><True/>
            <TreeModel functionName="regression" noTrueChildStrategy="returnLastPrediction">
              <MiningSchema><MiningField name="x"/><MiningField name="c=a"/></MiningSchema>
              <Node score="0.5"><True/>
                <Node score="2.0"><SimplePredicate field="x" operator="greaterThan" value="1.0"/>
                  <Node score="3.0"><SimplePredicate field="c=a" operator="greaterThan" value="0.5"/></Node>
                </Node>
                <Node score="-1.0"><SimplePredicate field="c=a" operator="greaterThan" value="0.5"/></Node>
              </Node>
            </TreeModel>
          </Segment>
        </Segmentation>
      </MiningModel>
    </Segment>
    <Segment id="2"><True/>
      <RegressionModel functionName="classification" normalizationMethod="logit">
        <MiningSchema><MiningField name="y" usageType="target"/><MiningField name="value"/></MiningSchema>
        <RegressionTable intercept="0.0" targetCategory="1"><NumericPredictor name="value" coefficient="1.0"/>
        </RegressionTable>
        <RegressionTable intercept="0.0" targetCategory="0"/>
      </RegressionModel>
    </Segment>
  </Segmentation>
</MiningModel>"""
"""A tree as JPMML writes LightGBM's: a node lists only the children a row leaves it for
(``returnLastPrediction``), one-hot indicators are ``NormDiscrete`` fields, and feature importances
are a documenting extension."""


def test_a_row_no_child_takes_gets_the_node_score() -> None:
    given = rows([2.0, 2.0, 0.0, 0.0, None, 0.0], ["a", "b", "a", "b", "a", None])
    # x > 1 and c = a: 3; x > 1 only: the node's 2; c = a only: -1; neither: the root's 0.5. A
    # missing x is unknown (no missingValueStrategy): its child is not taken. A missing c makes
    # the indicator missing, so no child tests true: the root's score.
    expected = [sigmoid(value) for value in (3.0, 2.0, -1.0, 0.5, -1.0, 0.5)]
    np.testing.assert_allclose(score(document(COMPACT), given), expected, rtol=0, atol=1e-15)


def test_a_missing_category_maps_to_the_declared_indicator() -> None:
    pmml = document(COMPACT.replace('<NormDiscrete field="c" value="a"/>',
                                    '<NormDiscrete field="c" value="a" mapMissingTo="1"/>'))
    np.testing.assert_allclose(score(pmml, rows([0.0], [None])), [sigmoid(-1.0)], rtol=0, atol=1e-15)


def test_thresholds_are_exact_doubles() -> None:
    """A value that DuckDB rounds wrongly as a DECIMAL literal still splits exactly."""
    generator = random.Random(7)
    candidates = [generator.uniform(-3, 3) for _ in range(2_000)]
    with duckdb.connect() as con:
        as_decimal = con.execute("select " + ", ".join(f"{v!r}::double" for v in candidates)).fetchone()
    assert as_decimal is not None
    tricky = [v for v, parsed in zip(candidates, as_decimal, strict=True) if parsed != v][:20]
    assert len(tricky) >= 10  # the hazard is real: bare literals would misroute these rows
    pmml = document(chain(*(tree(split(repr(v))) for v in tricky)))
    # A row on threshold v_i goes left in tree i: the sum counts the thresholds strictly below it.
    expected = [sigmoid(float(sum(other < v for other in tricky))) for v in tricky]
    np.testing.assert_allclose(score(pmml, rows(tricky)), expected, rtol=0, atol=1e-12)


def test_the_link_never_overflows() -> None:
    huge = rows([1e300, -1e300, 4.0 * LINK_BOUND + 1.0])
    np.testing.assert_allclose(score(document(LOGIT), huge), [1.0, 0.0, 1.0], rtol=0, atol=1e-300)


# ----- dialects ----------------------------------------------------------------------------------
PORTABLE = {"Case", "If", "Cast", "Coalesce", "Nullif", "Exp", "Greatest", "Least", "Or"}


@pytest.mark.slow
@pytest.mark.parametrize("dialect", ["spark", "postgres", "duckdb"])
def test_the_tree_renders_and_parses_back_in_each_dialect(exported: Exported, dialect: str) -> None:
    text = to_sql(exported.query, dialect)
    back = sqlglot.parse_one(text, read=dialect)
    assert isinstance(back, exp.Select)
    assert back.sql(dialect=dialect) == text


@pytest.mark.slow
def test_only_portable_functions_are_used(exported: Exported) -> None:
    used = {type(node).__name__ for node in exported.query.walk() if isinstance(node, exp.Func)}
    assert used <= PORTABLE
    assert "EXP(" in to_sql(exported.query, "postgres")
    assert "DOUBLE PRECISION" in to_sql(exported.query, "postgres")


def test_relation_and_kept_columns() -> None:
    query = compile_pmml(document(LOGIT), relation="analytics.scored_features", keep=["loan_id", "x"])
    text = to_sql(query)
    assert "FROM analytics.scored_features" in text
    assert [column.alias_or_name for column in query.selects] == ["loan_id", "x", "probability"]
    with pytest.raises(ValueError, match="probability"):
        compile_pmml(document(LOGIT), relation="t", keep=["probability"])
    with pytest.raises(ValueError, match="distinct"):
        compile_pmml(document(LOGIT), relation="t", keep=["loan_id", "loan_id"])


# ----- refusals ----------------------------------------------------------------------------------
NEURAL = """
<NeuralNetwork functionName="classification" activationFunction="logistic">
  <MiningSchema><MiningField name="y" usageType="target"/><MiningField name="x"/></MiningSchema>
</NeuralNetwork>"""


@pytest.mark.parametrize(
    ("pmml", "element", "path"),
    [
        pytest.param(document(NEURAL), "NeuralNetwork", "/PMML/NeuralNetwork", id="neural network"),
        pytest.param(
            document(LOGIT.replace('function="/"', 'function="ln"')),
            "Apply",
            "/PMML/RegressionModel/LocalTransformations/DerivedField/Apply",
            id="unknown function",
        ),
        pytest.param(
            document(LOGIT.replace('"logit"', '"probit"')), "RegressionModel", "/PMML/RegressionModel", id="probit link"
        ),
        pytest.param(
            document(LOGIT.replace('dataType="double">4.0', 'dataType="float">4.0')),
            "Constant",
            "/PMML/RegressionModel/LocalTransformations/DerivedField/Apply/Constant",
            id="float constant",
        ),
        pytest.param(
            document(LOGIT.replace('coefficient="2.0"/>', 'coefficient="2.0" exponent="2"/>')),
            "NumericPredictor",
            "/PMML/RegressionModel/RegressionTable[1]/NumericPredictor",
            id="exponent",
        ),
        pytest.param(
            document(
                LOGIT.replace(
                    '<RegressionTable intercept="0.0" targetCategory="0"/>',
                    '<RegressionTable intercept="0.0" targetCategory="0"><Extension/></RegressionTable>',
                )
            ),
            "Extension",
            "/PMML/RegressionModel/RegressionTable[2]/Extension",
            id="extension",
        ),
        pytest.param(
            document(LOGIT.replace('name="c" invalidValueTreatment="asIs"', 'name="c"')),
            "MiningField",
            "/PMML/RegressionModel/MiningSchema/MiningField[3]",
            id="invalid categories",
        ),
        pytest.param(
            document(LOGIT).replace('<Value value="1"/>', '<Value value="1"/><Value value="2"/>'),
            "RegressionModel",
            "/PMML/RegressionModel",
            id="multiclass",
        ),
        pytest.param(
            document(chain(tree(split("1.0")))).replace('"lessOrEqual"', '"isMissing"'),
            "SimplePredicate",
            "/PMML/MiningModel/Segmentation/Segment[1]/MiningModel/Segmentation/Segment/TreeModel/Node/"
            "Node[1]/SimplePredicate",
            id="isMissing",
        ),
        pytest.param(
            document(chain(tree(split("1.0")))).replace('"sum"', '"average"'),
            "Segmentation",
            "/PMML/MiningModel/Segmentation/Segment[1]/MiningModel/Segmentation",
            id="average",
        ),
        pytest.param(
            document(chain(tree(split("1.0").replace('defaultChild="2"', "")))),
            "Node",
            "/PMML/MiningModel/Segmentation/Segment[1]/MiningModel/Segmentation/Segment/TreeModel/Node",
            id="no default child",
        ),
        pytest.param(
            document(COMPACT.replace('"X-FeatureImportances"', '"X-Other"')),
            "Extension",
            "/PMML/MiningModel/MiningSchema/Extension",
            id="undocumented extension",
        ),
        pytest.param(
            document(COMPACT.replace('"returnLastPrediction"', '"returnLastPredictionOrNull"')),
            "TreeModel",
            "/PMML/MiningModel/Segmentation/Segment[1]/MiningModel/Segmentation/Segment/TreeModel",
            id="no true child strategy",
        ),
        pytest.param(
            document(chain(tree(split("1e400")))),
            "SimplePredicate",
            "/PMML/MiningModel/Segmentation/Segment[1]/MiningModel/Segmentation/Segment/TreeModel/Node/"
            "Node[1]/SimplePredicate",
            id="out of range",
        ),
    ],
)
def test_unsupported_pmml_is_refused_by_name(pmml: str, element: str, path: str) -> None:
    with pytest.raises(UnsupportedPMMLError) as refused:
        compile_pmml(pmml, relation="t", keep=[])
    assert refused.value.element == element
    assert refused.value.path == path
    assert f"<{element}> at {path}" in str(refused.value)


def test_not_pmml_is_refused() -> None:
    with pytest.raises(UnsupportedPMMLError, match="not a PMML"):
        compile_pmml("<model/>", relation="t")
    with pytest.raises(UnsupportedPMMLError, match="well-formed"):
        compile_pmml("<PMML", relation="t")
