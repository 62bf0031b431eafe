"""A case read back from a verified envelope is not checked against today's clock again."""

from __future__ import annotations

import copy

import pytest
from pydantic import ValidationError

from blo_exchange.domain.cases import STORED_CASE, SeizureCase
from blo_exchange.domain.examples import EXAMPLE_SEIZURE


def test_an_old_stored_case_reads_back_but_is_refused_as_a_new_one() -> None:
    case = copy.deepcopy(EXAMPLE_SEIZURE["case"])
    case["observed_at"] = "2001-01-01T00:00:00.000Z"
    with pytest.raises(ValidationError, match="days ago"):
        SeizureCase.model_validate(case)
    assert SeizureCase.model_validate(case, context=STORED_CASE).observed_at.year == 2001
