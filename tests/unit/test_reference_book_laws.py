"""The reference book's tabulated costs (tests/support/reference_book.py) against adaptive quadrature:
the exact answers the threshold tests are judged by are only as good as this table."""

from __future__ import annotations

import pytest

from tests.support.reference_book import GROUP_LAWS


@pytest.mark.parametrize("cut", [30.0, 50.0, 70.0])
@pytest.mark.parametrize("group", sorted(GROUP_LAWS))
def test_the_tabulated_cost_agrees_with_scipys_quadrature(group: str, cut: float) -> None:
    law = GROUP_LAWS[group]
    assert law.cost(cut) == pytest.approx(law.quad_cost(cut), abs=1e-9)
