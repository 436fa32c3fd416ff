"""Compile the PMML our pipelines export into one SQL query, built as a sqlglot expression tree.

Why a compiler rather than a hand-written query: the PMML document *is* the model, preprocessing
included, so the scoring SQL is derived from it mechanically and its parity with scikit-learn and
with the JPMML evaluator is a tested property. Why sqlglot: one tree renders for DuckDB (the
warehouse and the API), Spark SQL and PostgreSQL alike.

Only the PMML that sklearn2pmml writes for :func:`ml.train.build_pipeline` is translated:
missing-value replacement in the top ``MiningSchema``, arithmetic ``Apply`` (standard scaling),
``RegressionModel`` with numeric and categorical predictors (one-hot encoding: an unseen category
adds nothing) and a binary ``logit``/``softmax`` link, regression ``TreeModel``\\s (a node no child
takes gives NULL or, as JPMML writes LightGBM's trees, its own score), ``NormDiscrete`` one-hot
indicators, and ``MiningModel`` segmentations that add trees up (``sum``) or feed one model into
the next (``modelChain``). Anything else raises :class:`UnsupportedPMMLError` naming the element and its
path: refusing beats approximating a model.

Exactness, because a row on a split threshold must take the same branch everywhere:

* every number is written as ``CAST('<repr>' AS DOUBLE)``. DuckDB reads a bare ``0.123`` as a
  DECIMAL and its DECIMAL→DOUBLE conversion is one ulp off for some values (measured: 75 of 2,000
  random thresholds), enough to move a row across a split; string→double is correctly rounded in
  DuckDB, Spark and PostgreSQL;
* numeric inputs are cast to DOUBLE, and the arithmetic is done in the order the PMML states;
* a NaN input counts as missing, as it does for scikit-learn's imputer (and jpmml_evaluator's
  ``nan_as_missing`` default);
* the logistic link is ``1 / (1 + exp(-y))`` with ``y`` clamped to ±700, so ``exp`` neither
  overflows nor underflows (PostgreSQL raises on both); past the clamp the probability moves by
  less than 1e-304.

Engines: a tree ensemble compiles to a large expression. DuckDB plans the 250-tree model in about
0.4 s once each tree is a column of its own (as one expression its common-subexpression pass took
about 5 s). PostgreSQL must run it with ``jit = off``: LLVM compiling the ensemble ran for over
ten minutes and 6 GB before it was stopped; without JIT it plans in 0.5 s.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlglot import exp
from sqlglot.errors import ErrorLevel

from warehouse.errors import LendguardError

PROBABILITY_COLUMN = "probability"
"""The output column holding the probability of the positive class."""
LINK_BOUND = 700.0
"""``exp(±700)`` (about 1e±304) stays inside the double range: no overflow, no underflow."""

_ROOT = re.compile(r"^\{(http://www\.dmg\.org/PMML-4_[0-4])\}PMML$")
_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")
_METADATA = frozenset({"Header", "MiningBuildTask", "ModelStats", "ModelExplanation", "ModelVerification"})
"""Elements that document a model and take no part in scoring: skipped wherever they appear."""
_DOCUMENTING_EXTENSIONS = frozenset({"X-FeatureImportances"})
"""``<Extension name=…>`` elements JPMML writes to document a model (LightGBM's feature importances);
skipped like the metadata. Any other extension is refused: it may change what a model computes."""
_MODELS = frozenset({"RegressionModel", "TreeModel", "MiningModel"})
_EXPRESSIONS = frozenset({"Constant", "FieldRef", "Apply", "NormDiscrete"})
_PREDICATES = frozenset({"True", "False", "SimplePredicate"})
# Typed as Expression, not Binary: since sqlglot 30 Binary is a trait outside the Expression
# hierarchy, while these concrete node classes are Expressions (and Binary).
_ARITHMETIC: dict[str, type[exp.Expression]] = {"+": exp.Add, "-": exp.Sub, "*": exp.Mul, "/": exp.Div}
_COMPARISONS: dict[str, type[exp.Expression]] = {
    "equal": exp.EQ,
    "notEqual": exp.NEQ,
    "lessThan": exp.LT,
    "lessOrEqual": exp.LTE,
    "greaterThan": exp.GT,
    "greaterOrEqual": exp.GTE,
}
_MISSING_TREATMENTS = frozenset({"asIs", "asMean", "asMode", "asMedian", "asValue"})
_MODEL_ATTRIBUTES = frozenset({"functionName", "algorithmName", "modelName", "isScorable"})


class UnsupportedPMMLError(LendguardError):
    """The PMML holds an element or value this compiler does not translate (or is malformed)."""

    def __init__(self, message: str, *, element: str, path: str) -> None:
        super().__init__(f"{message}: <{element}> at {path}")
        self.element = element
        self.path = path


def compile_pmml(
    pmml: str | Path,
    *,
    relation: str,
    keep: Sequence[str] = (),
    positive: str = "1",
) -> exp.Select:
    """A ``select`` of ``keep`` plus ``probability`` (of class ``positive``) over ``relation``.

    ``pmml`` is a path or the document itself. ``relation`` holds one row per application with the
    model's input columns (the contract's feature names); ``keep`` columns pass through unchanged.
    """
    keep = list(keep)
    if len(set(keep)) != len(keep) or any(not name for name in keep):
        raise ValueError(f"keep columns must be distinct names: {keep}")
    if PROBABILITY_COLUMN in keep:
        raise ValueError(f"{PROBABILITY_COLUMN!r} is the output column: it cannot also be kept")
    document = _Document.load(pmml)
    return _Compiler(document, _Steps(relation, keep), positive).compile()


def to_sql(expression: exp.Expression, dialect: str = "duckdb", *, pretty: bool = False) -> str:
    """Render for one engine; a construct the dialect cannot express raises instead of warning."""
    return expression.sql(dialect=dialect, pretty=pretty, unsupported_level=ErrorLevel.RAISE)


# ----- SQL building blocks -----------------------------------------------------------------------
def _double(value: float) -> exp.Expression:
    """An exact double literal (see the module docstring for why not a bare number)."""
    return exp.cast(exp.Literal.string(repr(float(value))), exp.DataType.Type.DOUBLE, copy=False)


def _double_nan() -> exp.Expression:
    """NaN as a double: NULLIF(x, NaN) maps NaN to NULL (NaN = NaN holds in DuckDB, Spark, Postgres)."""
    return exp.cast(exp.Literal.string("NaN"), exp.DataType.Type.DOUBLE, copy=False)


def _column(name: str) -> exp.Column:
    return exp.column(name, quoted=True)


def _paren(node: exp.Expression) -> exp.Paren:
    """sqlglot does not parenthesise built trees by precedence: every operation carries its own."""
    return exp.Paren(this=node)


def _sum(terms: Sequence[exp.Expression]) -> exp.Expression:
    """``t1 + t2 + …`` evaluated left to right (the order scikit-learn accumulates in)."""
    total = terms[0]
    for term in terms[1:]:
        total = exp.Add(this=total, expression=term)
    return _paren(total) if len(terms) > 1 else total


def _sigmoid(score: exp.Expression) -> exp.Expression:
    """``1 / (1 + exp(-y))`` on ``y`` clamped to ±LINK_BOUND; NULL stays NULL.

    ``y`` is written twice, not three times as a CASE clamp would: PostgreSQL inlines the CTEs
    and evaluates the whole tree ensemble once per reference (250 depth-5 trees, 12k rows:
    2.7 s with two references, 5.4 s with three).
    """
    bound = _double(LINK_BOUND)
    clamped = exp.Greatest(
        this=exp.Least(this=score.copy(), expressions=[bound], ignore_nulls=True),
        expressions=[_double(-LINK_BOUND)],
        ignore_nulls=True,
    )
    denominator = _paren(exp.Add(this=_double(1.0), expression=exp.Exp(this=exp.Neg(this=clamped))))
    # GREATEST and LEAST skip NULLs (DuckDB, Spark, PostgreSQL): a missing score is kept apart.
    return exp.Case(
        ifs=[exp.If(this=exp.Is(this=score.copy(), expression=exp.Null()), true=exp.Null())],
        default=_paren(exp.Div(this=_double(1.0), expression=denominator)),
    )


def _complement(probability: exp.Expression) -> exp.Expression:
    return _paren(exp.Sub(this=_double(1.0), expression=probability.copy()))


_NEGATIONS: dict[type[exp.Expression], type[exp.Expression]] = {
    exp.LTE: exp.GT, exp.LT: exp.GTE, exp.GT: exp.LTE, exp.GTE: exp.LT,
}


def _complementary(conditions: Sequence[tuple[exp.Expression, dict[str, _Field]]]) -> bool:
    """Two comparisons of one never-NULL field with one value, the second the negation of the first."""
    if len(conditions) != 2:
        return False
    (first, fields), (second, _) = conditions
    if len(fields) != 1 or next(iter(fields.values())).nullable:
        return False
    negation = _NEGATIONS.get(type(first))
    return (
        negation is not None
        and isinstance(second, negation)
        and first.this == second.this
        and first.expression == second.expression
    )


@dataclass(frozen=True)
class _Field:
    """A PMML field as the query sees it: an expression over the current relation and its type."""

    sql: exp.Expression
    dtype: str
    nullable: bool = True
    """False only where SQL NULL cannot occur (a replaced input, arithmetic on such values)."""
    constant: float | None = None

    def ref(self) -> exp.Expression:
        return self.sql.copy()


@dataclass(frozen=True)
class _TreeRules:
    """How a TreeModel treats a missing input (``missingValueStrategy``) and a node no child takes."""

    missing: str
    last_prediction: bool
    """``noTrueChildStrategy="returnLastPrediction"``: such a row gets the node's own score."""


@dataclass
class _Result:
    """What a model computes: a predicted value (regression) or probabilities by category."""

    value: exp.Expression | None = None
    probabilities: dict[str, exp.Expression] = field(default_factory=dict)


class _Steps:
    """The query as a chain of CTEs: each selects the carried columns and adds new ones.

    Columns are named after the PMML fields (sanitised, de-duplicated against the kept columns),
    so the SQL reads like the PMML it came from.
    """

    def __init__(self, relation: str, keep: list[str]) -> None:
        self.source: exp.Table = exp.to_table(relation)
        self.keep = keep
        self.ctes: list[tuple[str, exp.Select]] = []
        self.current: exp.Table = self.source
        self.carried: list[str] = list(keep)
        self.taken: set[str] = {name.lower() for name in keep} | {PROBABILITY_COLUMN, self.source.name.lower()}

    def name(self, hint: str) -> str:
        base = re.sub(r"[^a-z0-9]+", "_", hint.lower()).strip("_")[:48] or "field"
        if base[0].isdigit():
            base = f"f_{base}"
        candidate, number = base, 1
        while candidate in self.taken:
            number += 1
            candidate = f"{base}_{number}"
        self.taken.add(candidate)
        return candidate

    def add(self, step: str, columns: Sequence[tuple[str, exp.Expression]]) -> list[exp.Expression]:
        """A new CTE: the carried columns plus ``columns`` (hint, expression); their references."""
        names = [self.name(hint) for hint, _ in columns]
        aliased = [
            exp.alias_(expression, name, quoted=True, copy=False)
            for name, (_, expression) in zip(names, columns, strict=True)
        ]
        select = exp.select(*(_column(name) for name in self.carried), *aliased, copy=False).from_(
            self.current.copy(),
            copy=False,
        )
        cte = self.name(f"pmml_{step}")
        self.ctes.append((cte, select))
        self.current = exp.to_table(cte)
        self.carried.extend(names)
        return [_column(name) for name in names]

    def finish(self, probability: exp.Expression) -> exp.Select:
        query = exp.select(
            *(_column(name) for name in self.keep),
            exp.alias_(probability, PROBABILITY_COLUMN, quoted=True, copy=False),
            copy=False,
        ).from_(self.current.copy(), copy=False)
        for name, cte in self.ctes:
            query = query.with_(name, as_=cte, copy=False)
        return query


# ----- reading the document ----------------------------------------------------------------------
class _Document:
    """The parsed PMML with what error messages need: local tag names and element paths."""

    def __init__(self, root: ET.Element) -> None:
        match = _ROOT.match(root.tag)
        if match is None:
            raise UnsupportedPMMLError("not a PMML 4.x document", element=root.tag, path="/")
        self.namespace = "{" + match.group(1) + "}"
        self.root = root
        self._parents = {child: parent for parent in root.iter() for child in parent}

    @classmethod
    def load(cls, pmml: str | Path) -> _Document:
        if isinstance(pmml, str) and pmml.lstrip().startswith("<"):
            text: str | bytes = pmml
        else:
            text = Path(pmml).read_bytes()
        try:
            # Our own artifact (from the training stage or the registry), not untrusted input.
            root = ET.fromstring(text)  # noqa: S314
        except ET.ParseError as error:
            raise UnsupportedPMMLError(f"not well-formed XML ({error})", element="?", path="/") from error
        return cls(root)

    def tag(self, element: ET.Element) -> str:
        """The local name; an element from another namespace keeps its full name (and is refused)."""
        return element.tag[len(self.namespace) :] if element.tag.startswith(self.namespace) else element.tag

    def path(self, element: ET.Element) -> str:
        steps: list[str] = []
        node: ET.Element | None = element
        while node is not None:
            parent = self._parents.get(node)
            step = self.tag(node)
            if parent is not None:
                same = [child for child in parent if child.tag == node.tag]
                if len(same) > 1:
                    step += f"[{next(i for i, child in enumerate(same, 1) if child is node)}]"
            steps.append(step)
            node = parent
        return "/" + "/".join(reversed(steps))

    def error(self, element: ET.Element, message: str) -> UnsupportedPMMLError:
        return UnsupportedPMMLError(message, element=self.tag(element), path=self.path(element))

    def children(self, element: ET.Element, allowed: Iterable[str]) -> dict[str, list[ET.Element]]:
        """Children by tag, metadata skipped; any other tag than ``allowed`` is refused."""
        allowed = set(allowed)
        found: dict[str, list[ET.Element]] = {tag: [] for tag in allowed}
        for child in element:
            tag = self.tag(child)
            if self.documents(child):
                continue
            if tag not in allowed:
                raise self.error(child, "unsupported element")
            found[tag].append(child)
        return found

    def ordered(self, element: ET.Element, allowed: Iterable[str]) -> list[ET.Element]:
        """Children in document order, metadata skipped; any other tag than ``allowed`` is refused."""
        self.children(element, allowed)
        return [child for child in element if not self.documents(child)]

    def documents(self, element: ET.Element) -> bool:
        """Metadata or a documenting extension: no part in scoring (its content is not read)."""
        tag = self.tag(element)
        return tag in _METADATA or (tag == "Extension" and element.get("name") in _DOCUMENTING_EXTENSIONS)

    def one(self, parent: ET.Element, found: dict[str, list[ET.Element]], tag: str) -> ET.Element:
        if len(found[tag]) != 1:
            raise self.error(parent, f"expected exactly one <{tag}>, found {len(found[tag])}")
        return found[tag][0]

    def optional(self, parent: ET.Element, found: dict[str, list[ET.Element]], tag: str) -> ET.Element | None:
        if len(found[tag]) > 1:
            raise self.error(parent, f"expected at most one <{tag}>, found {len(found[tag])}")
        return found[tag][0] if found[tag] else None

    def attributes(
        self,
        element: ET.Element,
        allowed: Iterable[str],
        required: Iterable[str] = (),
    ) -> dict[str, str]:
        attributes = dict(element.attrib)
        unknown = set(attributes) - set(allowed)
        if unknown:
            raise self.error(element, f"unsupported attribute(s) {sorted(unknown)}")
        missing = set(required) - set(attributes)
        if missing:
            raise self.error(element, f"missing attribute(s) {sorted(missing)}")
        return attributes

    def number(self, element: ET.Element, text: str | None, what: str) -> float:
        """A finite double, parsed exactly (Python's float() is correctly rounded)."""
        text = (text or "").strip()
        if not _NUMBER.match(text):
            raise self.error(element, f"unsupported {what} {text!r} (expected a finite decimal number)")
        value = float(text)
        if not math.isfinite(value):
            raise self.error(element, f"unsupported {what} {text!r} (out of double range)")
        return value


# ----- the compiler ------------------------------------------------------------------------------
class _Compiler:
    def __init__(self, document: _Document, steps: _Steps, positive: str) -> None:
        self.doc = document
        self.steps = steps
        self.positive = positive
        self.data_fields: dict[str, tuple[str, tuple[str, ...]]] = {}
        """name → (dataType, declared valid values)."""

    def compile(self) -> exp.Select:
        doc, root = self.doc, self.doc.root
        doc.attributes(root, {"version"})
        found = doc.children(root, {"DataDictionary", "TransformationDictionary", *_MODELS})
        self._data_dictionary(doc.one(root, found, "DataDictionary"))
        models = [model for tag in sorted(_MODELS) for model in found[tag]]
        if len(models) != 1:
            raise doc.error(root, f"expected exactly one model element, found {len(models)}")
        model = models[0]
        scope, target = self._inputs(model)
        dictionary = doc.optional(root, found, "TransformationDictionary")
        if dictionary is not None:
            doc.children(dictionary, {"DerivedField"})
            scope = self._derive(dictionary, scope, "transformed")
        result, _ = self._model(model, scope, target, top=True)
        if not result.probabilities:
            raise doc.error(model, "the model is not a classifier (no class probabilities)")
        if self.positive not in result.probabilities:
            raise ValueError(f"positive class {self.positive!r} is not one of {sorted(result.probabilities)}")
        return self.steps.finish(result.probabilities[self.positive])

    # --- fields ----------------------------------------------------------------------------------
    def _data_dictionary(self, dictionary: ET.Element) -> None:
        doc = self.doc
        doc.attributes(dictionary, {"numberOfFields"})
        for data_field in doc.children(dictionary, {"DataField"})["DataField"]:
            attributes = doc.attributes(
                data_field,
                {"name", "optype", "dataType", "displayName", "isCyclic"},
                {"name", "dataType"},
            )
            if attributes.get("isCyclic", "0") != "0":
                raise doc.error(data_field, "unsupported isCyclic")
            values = []
            for value in doc.children(data_field, {"Value"})["Value"]:
                value_attributes = doc.attributes(value, {"value", "displayName", "property"}, {"value"})
                if value_attributes.get("property", "valid") != "valid":
                    raise doc.error(value, f"unsupported property={value_attributes['property']!r}")
                values.append(value_attributes["value"])
            self.data_fields[attributes["name"]] = (attributes["dataType"], tuple(values))

    def _lookup(self, element: ET.Element, scope: dict[str, _Field], name: str) -> _Field:
        if name not in scope:
            raise self.doc.error(element, f"unknown field {name!r}")
        return scope[name]

    def _literal(self, element: ET.Element, field_: _Field, text: str) -> exp.Expression:
        if field_.dtype == "double":
            return _double(self.doc.number(element, text, "value"))
        return exp.Literal.string(text)

    def _inputs(self, model: ET.Element) -> tuple[dict[str, _Field], str | None]:
        """The first CTE: kept columns and the model's inputs, cast, with missing values replaced."""
        doc = self.doc
        schema = doc.one(model, doc.children(model, _MODEL_CHILDREN[doc.tag(model)]), "MiningSchema")
        target: str | None = None
        columns: list[tuple[str, exp.Expression]] = []
        types: list[str] = []
        nullable: list[bool] = []
        for mining_field in doc.children(schema, {"MiningField"})["MiningField"]:
            attributes = doc.attributes(
                mining_field,
                {
                    "name",
                    "usageType",
                    "optype",
                    "importance",
                    "outliers",
                    "missingValueReplacement",
                    "missingValueTreatment",
                    "invalidValueTreatment",
                },
                {"name"},
            )
            name = attributes["name"]
            usage = attributes.get("usageType", "active")
            if usage in {"target", "predicted"}:
                target = name
                continue
            if usage != "active":
                raise doc.error(mining_field, f"unsupported usageType={usage!r}")
            if name not in self.data_fields:
                raise doc.error(mining_field, f"field {name!r} is not in the DataDictionary")
            dtype, values = self.data_fields[name]
            if attributes.get("outliers", "asIs") != "asIs":
                raise doc.error(mining_field, f"unsupported outliers={attributes['outliers']!r}")
            invalid = attributes.get("invalidValueTreatment", "returnInvalid")
            # "asIs" lets an unseen category through (one-hot encoding then adds nothing);
            # "returnInvalid" is a no-op only where the field declares no valid values.
            if invalid != "asIs" and not (invalid == "returnInvalid" and not values):
                raise doc.error(mining_field, f"unsupported invalidValueTreatment={invalid!r}")
            treatment = attributes.get("missingValueTreatment")
            if treatment is not None and treatment not in _MISSING_TREATMENTS:
                raise doc.error(mining_field, f"unsupported missingValueTreatment={treatment!r}")
            if dtype == "double":
                value: exp.Expression = exp.Nullif(
                    this=exp.cast(_column(name), exp.DataType.Type.DOUBLE, copy=False),
                    expression=_double_nan(),
                )
            elif dtype == "string":
                value = _column(name)
            else:
                raise doc.error(mining_field, f"unsupported dataType={dtype!r} for an input")
            replacement = attributes.get("missingValueReplacement")
            nullable.append(replacement is None)
            if replacement is not None:
                literal = (
                    _double(doc.number(mining_field, replacement, "missingValueReplacement"))
                    if dtype == "double"
                    else exp.Literal.string(replacement)
                )
                value = exp.Coalesce(this=value, expressions=[literal])
            columns.append((name, value))
            types.append(dtype)
        if not columns:
            raise doc.error(schema, "the model has no active inputs")
        references = self.steps.add("inputs", columns)
        scope = {
            name: _Field(reference, dtype, may_be_null)
            for (name, _), reference, dtype, may_be_null in zip(columns, references, types, nullable, strict=True)
        }
        return scope, target

    def _derive(self, block: ET.Element, scope: dict[str, _Field], step: str) -> dict[str, _Field]:
        """DerivedFields as new columns; a field using one defined in the same block starts a new CTE."""
        doc, local = self.doc, dict(scope)
        pending: list[tuple[str, exp.Expression]] = []
        pending_nullable: list[bool] = []

        def flush() -> None:
            references = self.steps.add(step, pending)
            for (name, _), reference, may_be_null in zip(pending, references, pending_nullable, strict=True):
                local[name] = _Field(reference, "double", may_be_null)
            pending.clear()
            pending_nullable.clear()

        for derived in doc.children(block, {"DerivedField"})["DerivedField"]:
            attributes = doc.attributes(derived, {"name", "optype", "dataType", "displayName"}, {"name", "dataType"})
            name = attributes["name"]
            if attributes["dataType"] != "double":
                raise doc.error(derived, f"unsupported dataType={attributes['dataType']!r}")
            if name in local or any(name == pending_name for pending_name, _ in pending):
                raise doc.error(derived, f"field {name!r} is defined twice")
            expressions = doc.ordered(derived, _EXPRESSIONS)
            if len(expressions) != 1:
                raise doc.error(derived, "expected exactly one expression")
            expression = expressions[0]
            used = {ref.get("field") for ref in expression.iter(f"{doc.namespace}FieldRef")}
            if used & {pending_name for pending_name, _ in pending}:
                flush()
            value = self._expression(expression, local)
            if value.dtype != "double":
                raise doc.error(derived, "a derived field must compute a double")
            pending.append((name, value.sql))
            pending_nullable.append(value.nullable)
        if pending:
            flush()
        return local

    def _expression(self, element: ET.Element, scope: dict[str, _Field]) -> _Field:
        doc, tag = self.doc, self.doc.tag(element)
        if tag == "Constant":
            attributes = doc.attributes(element, {"dataType"}, {"dataType"})
            if attributes["dataType"] != "double":
                raise doc.error(element, f"unsupported dataType={attributes['dataType']!r}")
            doc.children(element, ())
            value = doc.number(element, element.text, "constant")
            return _Field(_double(value), "double", nullable=False, constant=value)
        if tag == "FieldRef":
            attributes = doc.attributes(element, {"field"}, {"field"})
            doc.children(element, ())
            referenced = self._lookup(element, scope, attributes["field"])
            return _Field(referenced.ref(), referenced.dtype, referenced.nullable)
        if tag == "NormDiscrete":
            # One indicator of a one-hot encoding (JPMML's LightGBM input): 1 for the value, 0 for
            # any other; a missing input stays missing unless mapMissingTo names its value.
            attributes = doc.attributes(element, {"field", "value", "mapMissingTo"}, {"field", "value"})
            doc.children(element, ())
            referenced = self._lookup(element, scope, attributes["field"])
            ifs = []
            missing_to = attributes.get("mapMissingTo")
            if referenced.nullable:
                when_missing = (exp.Null() if missing_to is None
                                else _double(doc.number(element, missing_to, "mapMissingTo")))
                ifs.append(exp.If(this=exp.Is(this=referenced.ref(), expression=exp.Null()), true=when_missing))
            category = self._literal(element, referenced, attributes["value"])
            ifs.append(exp.If(this=exp.EQ(this=referenced.ref(), expression=category), true=_double(1.0)))
            return _Field(exp.Case(ifs=ifs, default=_double(0.0)), "double", referenced.nullable and missing_to is None)
        if tag == "Apply":
            attributes = doc.attributes(element, {"function", "invalidValueTreatment"}, {"function"})
            function = attributes["function"]
            if function not in _ARITHMETIC:
                raise doc.error(element, f"unsupported function {function!r}")
            if attributes.get("invalidValueTreatment", "returnInvalid") != "returnInvalid":
                raise doc.error(element, f"unsupported invalidValueTreatment={attributes['invalidValueTreatment']!r}")
            arguments = [self._expression(argument, scope) for argument in doc.ordered(element, _EXPRESSIONS)]
            if len(arguments) != 2 or any(argument.dtype != "double" for argument in arguments):
                raise doc.error(element, f"function {function!r} takes two doubles")
            left, right = arguments
            # Division by zero gives NULL in DuckDB and Spark: only a non-zero constant divisor is safe.
            safe_divisor = function != "/" or right.constant not in {None, 0.0}
            return _Field(
                _paren(_ARITHMETIC[function](this=left.ref(), expression=right.ref())),
                "double",
                left.nullable or right.nullable or not safe_divisor,
            )
        raise doc.error(element, "unsupported element")

    # --- models ----------------------------------------------------------------------------------
    def _model(
        self,
        element: ET.Element,
        scope: dict[str, _Field],
        target: str | None,
        *,
        top: bool,
    ) -> tuple[_Result, dict[str, exp.Expression]]:
        """Compile one model; return its result and its output fields (name → expression)."""
        doc, tag = self.doc, self.doc.tag(element)
        if tag not in _MODELS:
            raise doc.error(element, "unsupported element")
        found = doc.children(element, _MODEL_CHILDREN[tag])
        schema = doc.one(element, found, "MiningSchema")
        if not top:
            target = self._nested_schema(schema, scope)
        local = scope
        transformations = doc.optional(element, found, "LocalTransformations")
        if transformations is not None:
            local = self._derive(transformations, scope, "derived")
        if tag == "RegressionModel":
            result = self._regression_model(element, found, local, target)
        elif tag == "TreeModel":
            result = self._tree_model(element, found, local)
        else:
            result = self._mining_model(element, found, local, target)
        if found["Output"] and result.value is not None and not isinstance(result.value, exp.Column):
            # Outputs are read by the next model of a chain: one column, not copies of a tree sum.
            names = [output.get("name", "") for output in found["Output"][0] if output.get("feature") is None]
            hint = names[0] if names and names[0] else f"{tag}_prediction"
            [column] = self.steps.add("prediction", [(hint, result.value)])
            result = _Result(value=column)
        return result, self._outputs(element, found, result)

    def _nested_schema(self, schema: ET.Element, scope: dict[str, _Field]) -> str | None:
        """An inner model's MiningSchema may only name fields: value preparation is top-level only."""
        doc, target = self.doc, None
        for mining_field in doc.children(schema, {"MiningField"})["MiningField"]:
            attributes = doc.attributes(mining_field, {"name", "usageType", "optype", "importance"}, {"name"})
            usage = attributes.get("usageType", "active")
            if usage in {"target", "predicted"}:
                target = attributes["name"]
            elif usage != "active":
                raise doc.error(mining_field, f"unsupported usageType={usage!r}")
            else:
                self._lookup(mining_field, scope, attributes["name"])
        return target

    def _categories(self, model: ET.Element, target: str | None) -> tuple[str, ...]:
        if target is None or target not in self.data_fields:
            raise self.doc.error(model, "a classifier needs a target field declared in the DataDictionary")
        categories = self.data_fields[target][1]
        if len(categories) != 2:
            raise self.doc.error(model, f"only binary classification is supported ({len(categories)} classes)")
        return categories

    def _regression_model(
        self,
        model: ET.Element,
        found: dict[str, list[ET.Element]],
        scope: dict[str, _Field],
        target: str | None,
    ) -> _Result:
        doc = self.doc
        attributes = doc.attributes(
            model,
            {*_MODEL_ATTRIBUTES, "normalizationMethod", "modelType", "targetFieldName"},
            {"functionName"},
        )
        self._scorable(model, attributes)
        tables = found["RegressionTable"]
        method = attributes.get("normalizationMethod", "none")
        function = attributes["functionName"]
        if function == "regression":
            if len(tables) != 1:
                raise doc.error(model, f"a regression needs exactly one RegressionTable, found {len(tables)}")
            if method != "none":
                raise doc.error(model, f"unsupported normalizationMethod={method!r} for a regression")
            return _Result(value=self._targets(model, found, [self._linear(tables[0], scope)]))
        if function != "classification":
            raise doc.error(model, f"unsupported functionName={function!r}")
        if found["Targets"]:
            raise doc.error(found["Targets"][0], "unsupported element in a classifier")
        categories = self._categories(model, target)
        labels = [
            doc.attributes(table, {"intercept", "targetCategory"}, {"targetCategory"})["targetCategory"]
            for table in tables
        ]
        if sorted(labels) != sorted(categories):
            raise doc.error(model, f"RegressionTables {labels} do not match the target classes {list(categories)}")
        first, second = labels
        if method == "logit":
            # Binary logit: the first table's class gets 1/(1+exp(-y)), the last one the rest
            # (its table is read only to refuse what it may hold).
            self._linear(tables[1], scope)
            [score] = self.steps.add("linear", [("linear_predictor", self._linear(tables[0], scope))])
        elif method == "softmax":
            # exp(y1)/(exp(y1)+exp(y2)) is the logistic function of y1 - y2.
            difference = _paren(exp.Sub(this=self._linear(tables[0], scope), expression=self._linear(tables[1], scope)))
            [score] = self.steps.add("linear", [("linear_predictor", difference)])
        else:
            raise doc.error(model, f"unsupported normalizationMethod={method!r}")
        [probability] = self.steps.add("link", [(f"probability_{first}", _sigmoid(score))])
        return _Result(probabilities={first: probability, second: _complement(probability)})

    def _linear(self, table: ET.Element, scope: dict[str, _Field]) -> exp.Expression:
        """intercept + Σ coefficient·x + one CASE per categorical field (unseen category → 0)."""
        doc = self.doc
        attributes = doc.attributes(table, {"intercept", "targetCategory"}, {"intercept"})
        terms: list[exp.Expression] = [_double(doc.number(table, attributes["intercept"], "intercept"))]
        categorical: dict[str, list[exp.If]] = {}
        seen: set[tuple[str, str]] = set()
        for predictor in doc.ordered(table, {"NumericPredictor", "CategoricalPredictor"}):
            if doc.tag(predictor) == "NumericPredictor":
                numeric = doc.attributes(predictor, {"name", "coefficient", "exponent"}, {"name", "coefficient"})
                if doc.number(predictor, numeric.get("exponent", "1"), "exponent") != 1.0:
                    raise doc.error(predictor, f"unsupported exponent={numeric['exponent']!r}")
                value = self._lookup(predictor, scope, numeric["name"])
                if value.dtype != "double":
                    raise doc.error(predictor, f"field {numeric['name']!r} is not numeric")
                coefficient = _double(doc.number(predictor, numeric["coefficient"], "coefficient"))
                terms.append(_paren(exp.Mul(this=coefficient, expression=value.ref())))
            else:
                category = doc.attributes(predictor, {"name", "value", "coefficient"}, {"name", "value", "coefficient"})
                if (category["name"], category["value"]) in seen:
                    raise doc.error(predictor, f"category {category['value']!r} is listed twice")
                seen.add((category["name"], category["value"]))
                value = self._lookup(predictor, scope, category["name"])
                test = exp.EQ(this=value.ref(), expression=self._literal(predictor, value, category["value"]))
                coefficient = _double(doc.number(predictor, category["coefficient"], "coefficient"))
                categorical.setdefault(category["name"], []).append(exp.If(this=test, true=coefficient))
        # One-hot encoding with handle_unknown="ignore": an unseen (or missing) category adds 0,
        # as in scikit-learn and the JPMML evaluator.
        terms.extend(exp.Case(ifs=ifs, default=_double(0.0)) for ifs in categorical.values())
        return _sum(terms)

    def _tree_model(self, model: ET.Element, found: dict[str, list[ET.Element]], scope: dict[str, _Field]) -> _Result:
        doc = self.doc
        attributes = doc.attributes(
            model,
            {
                *_MODEL_ATTRIBUTES,
                "missingValueStrategy",
                "missingValuePenalty",
                "noTrueChildStrategy",
                "splitCharacteristic",
            },
            {"functionName"},
        )
        self._scorable(model, attributes)
        if attributes["functionName"] != "regression":
            raise doc.error(model, f"unsupported functionName={attributes['functionName']!r} for a tree")
        strategy = attributes.get("missingValueStrategy", "none")
        if strategy not in {"none", "defaultChild"}:
            raise doc.error(model, f"unsupported missingValueStrategy={strategy!r}")
        if doc.number(model, attributes.get("missingValuePenalty", "1.0"), "missingValuePenalty") != 1.0:
            raise doc.error(model, "unsupported missingValuePenalty")
        no_true_child = attributes.get("noTrueChildStrategy", "returnNullPrediction")
        if no_true_child not in {"returnNullPrediction", "returnLastPrediction"}:
            raise doc.error(model, f"unsupported noTrueChildStrategy={no_true_child!r}")
        if attributes.get("splitCharacteristic", "multiSplit") not in {"binarySplit", "multiSplit"}:
            raise doc.error(model, f"unsupported splitCharacteristic={attributes['splitCharacteristic']!r}")
        root = doc.one(model, found, "Node")
        condition, _ = self._predicate(self._node_predicate(root), scope)
        value = self._node(root, scope, _TreeRules(strategy, no_true_child == "returnLastPrediction"))
        if not isinstance(condition, exp.Boolean) or not condition.this:
            value = exp.Case(ifs=[exp.If(this=condition, true=value)])
        return _Result(value=self._targets(model, found, [value]))

    def _node_predicate(self, node: ET.Element) -> ET.Element:
        children = self.doc.ordered(node, {"Node", *_PREDICATES})
        predicates = [child for child in children if self.doc.tag(child) != "Node"]
        if len(predicates) != 1 or children[0] is not predicates[0]:
            raise self.doc.error(node, "a Node needs exactly one predicate, before its child nodes")
        return predicates[0]

    def _node(self, node: ET.Element, scope: dict[str, _Field], rules: _TreeRules) -> exp.Expression:
        """The value of the subtree below ``node``, once ``node`` has been reached.

        PMML takes the first child whose predicate is true; with ``defaultChild``, the first child
        predicate that is unknown (its field missing) sends the row to the default child instead.
        All child predicates here test one field, so "unknown" is "that field is NULL", written
        into the default child's condition (SQL's CASE already skips the unknown ones before it).
        With ``none`` an unknown predicate counts as false, which is what CASE does. No true child
        gives NULL (``returnNullPrediction``), or the node's own score (``returnLastPrediction``, as
        JPMML writes LightGBM's trees: a node lists only the children that leave it, and a row none
        of them takes stays there); CASE's ELSE says either.
        """
        doc = self.doc
        strategy = rules.missing
        attributes = doc.attributes(node, {"id", "score", "recordCount", "defaultChild"})
        children = doc.children(node, {"Node", *_PREDICATES})["Node"]
        if not children:
            if "score" not in attributes:
                raise doc.error(node, "a leaf needs a score")
            return _double(doc.number(node, attributes["score"], "score"))
        conditions = [self._predicate(self._node_predicate(child), scope) for child in children]
        default: ET.Element | None = None
        missing: exp.Expression | None = None
        if strategy == "defaultChild":
            if "defaultChild" not in attributes:
                raise doc.error(node, "missingValueStrategy='defaultChild' needs a defaultChild")
            default = next((child for child in children if child.get("id") == attributes["defaultChild"]), None)
            if default is None:
                raise doc.error(node, f"defaultChild {attributes['defaultChild']!r} is not a child node")
            tested = {name: field_ for _, fields in conditions for name, field_ in fields.items()}
            if len(tested) > 1:
                raise doc.error(node, f"defaultChild over predicates on several fields {sorted(tested)}")
            if tested:
                [field_] = tested.values()
                if field_.nullable:
                    missing = exp.Is(this=field_.ref(), expression=exp.Null())
        if missing is None and _complementary(conditions):
            # A binary split on a field that cannot be NULL here: the second test is the negation
            # of the first, so ELSE takes its branch (half the comparisons, same result).
            first, second = children
            return exp.Case(
                ifs=[exp.If(this=conditions[0][0], true=self._node(first, scope, rules))],
                default=self._node(second, scope, rules),
            )
        ifs = []
        for child, (condition, _) in zip(children, conditions, strict=True):
            taken = condition
            if child is default and missing is not None:
                taken = _paren(exp.Or(this=missing.copy(), expression=condition))
            ifs.append(exp.If(this=taken, true=self._node(child, scope, rules)))
        if rules.last_prediction and "score" in attributes:
            return exp.Case(ifs=ifs, default=_double(doc.number(node, attributes["score"], "score")))
        return exp.Case(ifs=ifs)

    def _predicate(self, element: ET.Element, scope: dict[str, _Field]) -> tuple[exp.Expression, dict[str, _Field]]:
        """The SQL condition and the fields it tests (SQL NULL plays PMML's UNKNOWN)."""
        doc, tag = self.doc, self.doc.tag(element)
        doc.children(element, ())
        if tag in {"True", "False"}:
            doc.attributes(element, ())
            return (exp.true() if tag == "True" else exp.false()), {}
        if tag != "SimplePredicate":
            raise doc.error(element, "unsupported element")
        attributes = doc.attributes(element, {"field", "operator", "value"}, {"field", "operator", "value"})
        operator = attributes["operator"]
        if operator not in _COMPARISONS:
            raise doc.error(element, f"unsupported operator={operator!r}")
        value = self._lookup(element, scope, attributes["field"])
        literal = self._literal(element, value, attributes["value"])
        return _COMPARISONS[operator](this=value.ref(), expression=literal), {attributes["field"]: value}

    def _mining_model(
        self,
        model: ET.Element,
        found: dict[str, list[ET.Element]],
        scope: dict[str, _Field],
        target: str | None,
    ) -> _Result:
        doc = self.doc
        attributes = doc.attributes(model, _MODEL_ATTRIBUTES, {"functionName"})
        self._scorable(model, attributes)
        function = attributes["functionName"]
        segmentation = doc.one(model, found, "Segmentation")
        options = doc.attributes(
            segmentation, {"multipleModelMethod", "missingPredictionTreatment"}, {"multipleModelMethod"}
        )
        method = options["multipleModelMethod"]
        if options.get("missingPredictionTreatment", "continue") != "returnMissing":
            # SQL NULL propagates through the sum and the chain: that is "returnMissing".
            raise doc.error(
                segmentation,
                f"unsupported missingPredictionTreatment={options.get('missingPredictionTreatment', 'continue')!r}",
            )
        models = [self._segment_model(segment) for segment in doc.children(segmentation, {"Segment"})["Segment"]]
        if not models:
            raise doc.error(segmentation, "no segments")
        if method == "sum":
            if function != "regression":
                raise doc.error(model, f"unsupported functionName={function!r} for a sum of models")
            values = []
            for segment_model in models:
                result, _ = self._model(segment_model, scope, target, top=False)
                if result.value is None:
                    raise doc.error(segment_model, "a summed segment must be a regression")
                values.append(result.value)
            # One column per segment, added up in the next step: DuckDB's planner (common
            # subexpression elimination) slows down sharply on one expression holding every tree.
            columns = self.steps.add("segments", [(f"segment_{i}", value) for i, value in enumerate(values, 1)])
            return _Result(value=self._targets(model, found, columns))
        if method != "modelChain":
            raise doc.error(segmentation, f"unsupported multipleModelMethod={method!r}")
        chain = dict(scope)
        result = _Result()
        for segment_model in models:
            result, outputs = self._model(segment_model, chain, target, top=False)
            chain.update({name: _Field(output, "double") for name, output in outputs.items()})
        if (function == "classification") != bool(result.probabilities):
            raise doc.error(model, f"functionName={function!r} does not match the last segment of the chain")
        if function == "classification" and found["Targets"]:
            raise doc.error(found["Targets"][0], "unsupported element in a classifier")
        if function == "regression":
            result = _Result(value=self._targets(model, found, [result.value] if result.value is not None else []))
        return result

    def _segment_model(self, segment: ET.Element) -> ET.Element:
        doc = self.doc
        attributes = doc.attributes(segment, {"id", "weight"})
        if doc.number(segment, attributes.get("weight", "1"), "weight") != 1.0:
            raise doc.error(segment, "unsupported segment weight")
        children = doc.ordered(segment, {*_PREDICATES, *_MODELS})
        if len(children) != 2 or doc.tag(children[0]) != "True" or doc.tag(children[1]) not in _MODELS:
            raise doc.error(segment, "a Segment must hold <True/> and one model")
        return children[1]

    # --- shared model parts ----------------------------------------------------------------------
    def _scorable(self, model: ET.Element, attributes: dict[str, str]) -> None:
        if attributes.get("isScorable", "true") != "true":
            raise self.doc.error(model, "the model is marked isScorable='false'")

    def _targets(
        self,
        model: ET.Element,
        found: dict[str, list[ET.Element]],
        terms: Sequence[exp.Expression],
    ) -> exp.Expression:
        """The predicted value: Σ terms, rescaled by ``Targets`` (constant first, as scikit-learn adds it)."""
        doc = self.doc
        if not terms:
            raise doc.error(model, "nothing to predict")
        targets = doc.optional(model, found, "Targets")
        if targets is None:
            return _sum(terms)
        target = doc.one(targets, doc.children(targets, {"Target"}), "Target")
        doc.children(target, ())
        attributes = doc.attributes(target, {"field", "optype", "rescaleFactor", "rescaleConstant"})
        factor = doc.number(target, attributes.get("rescaleFactor", "1"), "rescaleFactor")
        constant = _double(doc.number(target, attributes.get("rescaleConstant", "0"), "rescaleConstant"))
        if factor == 1.0:
            # Gradient boosting starts from its baseline and adds tree after tree: same order here.
            return _sum([constant, *terms])
        return _sum([_paren(exp.Mul(this=_sum(terms), expression=_double(factor))), constant])

    def _outputs(
        self,
        model: ET.Element,
        found: dict[str, list[ET.Element]],
        result: _Result,
    ) -> dict[str, exp.Expression]:
        """Output fields a later model of a chain can read: predicted values and probabilities."""
        doc = self.doc
        output = doc.optional(model, found, "Output")
        if output is None:
            return {}
        fields: dict[str, exp.Expression] = {}
        for output_field in doc.children(output, {"OutputField"})["OutputField"]:
            attributes = doc.attributes(
                output_field,
                {"name", "optype", "dataType", "feature", "value", "isFinalResult"},
                {"name"},
            )
            doc.children(output_field, ())
            if attributes.get("dataType", "double") != "double":
                raise doc.error(output_field, f"unsupported dataType={attributes['dataType']!r}")
            feature = attributes.get("feature", "predictedValue")
            if feature == "predictedValue" and result.value is not None:
                fields[attributes["name"]] = result.value.copy()
            elif feature == "probability" and attributes.get("value") in result.probabilities:
                fields[attributes["name"]] = result.probabilities[attributes["value"]].copy()
            else:
                raise doc.error(output_field, f"unsupported feature={feature!r} (value={attributes.get('value')!r})")
        return fields


_MODEL_CHILDREN: dict[str, frozenset[str]] = {
    "RegressionModel": frozenset({"MiningSchema", "Output", "Targets", "LocalTransformations", "RegressionTable"}),
    "TreeModel": frozenset({"MiningSchema", "Output", "Targets", "LocalTransformations", "Node"}),
    "MiningModel": frozenset({"MiningSchema", "Output", "Targets", "LocalTransformations", "Segmentation"}),
}
