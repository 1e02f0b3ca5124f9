"""The official JSON Schema Test Suite (drafts 2020-12, 7 and 4) on compile_json_schema.

One test per (keyword file, schema group): the schema must compile and every
valid instance must be accepted and every invalid one rejected, forced as bytes
through the matcher (see constrain.evaluation.conformance.run_case). Every case
that does not pass today is listed, with its reason, in
tests/schema_suite_xfail.py as a strict xfail: a wrongly accepted or wrongly
refused instance is never silent, and a case that starts passing fails the run
until that file is regenerated with the command written at its top.
"""

from __future__ import annotations

import pytest

from constrain.evaluation.conformance import case_id, iter_cases, run_case

from .conftest import SHARED_DATA
from .schema_suite_xfail import XFAIL

SUITE = SHARED_DATA / "json-schema-test-suite"
DRAFTS = ["2020-12", "7", "4"]


def _params() -> list:
    if not (SUITE / "tests").is_dir():
        return [pytest.param(None, None, None, marks=pytest.mark.skip(reason=f"shared data not found: {SUITE}"),
                             id="suite-missing")]
    params = []
    for draft in DRAFTS:
        for folder, rel, index, case in iter_cases(SUITE, draft):
            cid = case_id(folder, rel, index)
            marks = [pytest.mark.xfail(strict=True, reason=XFAIL[cid])] if cid in XFAIL else []
            params.append(pytest.param(cid, draft, case, marks=marks, id=cid))
    return params


@pytest.mark.parametrize("cid, draft, case", _params())
def test_suite_case(cid, draft, case):
    result = run_case(case, draft, suite=SUITE, cid=cid)
    assert result.status == "passed", f"{cid} [{result.status}] {case['description']}: " + "; ".join(result.problems)


def test_xfail_list_names_existing_cases():
    """A stale entry (renamed file, shifted index) would hide nothing and silently rot."""
    if not (SUITE / "tests").is_dir():
        pytest.skip(f"shared data not found: {SUITE}")
    known = {case_id(folder, rel, i) for d in DRAFTS for folder, rel, i, _ in iter_cases(SUITE, d)}
    stale = sorted(set(XFAIL) - known)
    assert not stale, f"tests/schema_suite_xfail.py lists cases the suite does not have: {stale[:10]}"
