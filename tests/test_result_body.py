"""The body of a result as the test thread writes it (``Result.api_json``, put together from
parts for speed) is byte for byte what the JSON encoder writes for ``Result.to_api``, for
every kind of value, including the ones a ``pytest_qase_result`` hook may leave."""

from __future__ import annotations

import json
import math

import pytest

from pytest_qase.results import Result, Step, _signature, to_json_bytes


def _result(**changes) -> Result:
    result = Result(title="test_login", signature="tests/test_a.py::test_login", status="passed",
                    start_time=1796408394.0301, end_time=1796408396.1384, duration_ms=2108,
                    nodeid="tests/test_a.py::test_login[0]", suites=["tests", "test_a"],
                    params={"i": "0"}, param_groups=[["i"]])
    for name, value in changes.items():
        setattr(result, name, value)
    return result


ODD_TEXT = 'quote " backslash \\ newline \n tab \t nul \x00 bell \x07 é 日本 \U0001f600 \u2028'

CASES = {
    "plain": {},
    "no params, no suites": {"params": {}, "param_groups": [], "suites": []},
    "class and groups": {"suites": ["tests", "test_a", "TestGroup"],
                         "params": {"name": "a", "value": "2.5", "db": "sqlite"},
                         "param_groups": [["name", "value"], ["db"]]},
    "odd text everywhere": {"title": ODD_TEXT, "signature": ODD_TEXT, "message": ODD_TEXT,
                            "stacktrace": ODD_TEXT, "thread": ODD_TEXT, "suites": [ODD_TEXT],
                            "params": {ODD_TEXT: ODD_TEXT}, "param_groups": [[ODD_TEXT]]},
    "lone surrogate": {"message": "bad \udc80 text", "params": {"p": "\ud800"}},
    "failed with a trace": {"status": "failed", "message": "assert 1 == 2",
                            "stacktrace": "def test():\n>   assert 1 == 2\nE   assert 1 == 2"},
    "whole seconds and tiny times": {"start_time": 1796408394.0, "end_time": 0.0004,
                                     "duration_ms": 0},
    "huge time": {"start_time": 1e300, "end_time": -1e-300},
    # what the fast path leaves to the encoder: these must come out the same too
    "steps": {"steps": [Step(title="open", start_time=1.0, end_time=2.0)]},
    "fields": {"fields": {"severity": "major"}},
    "case ids": {"case_ids": [4, 5]},
    "defect": {"defect": True, "status": "failed"},
    "muted": {"muted": True},
    # values a pytest_qase_result hook may set
    "int times": {"start_time": 1796408394, "end_time": 1796408396},
    "nan time": {"end_time": math.nan},
    "infinite time": {"start_time": math.inf},
    "float duration": {"duration_ms": 12.5},
    "bool duration": {"duration_ms": True},
    "int title": {"title": 42},
    "int param name": {"params": {1: "a"}},
    "None param value": {"params": {"p": None}},
    "tuple groups": {"param_groups": [("i",)]},
    "suite is not text": {"suites": ["tests", 3]},
    "suite is a bool": {"suites": [True]},  # equal to 1 as a cache key: written as true
    "suite is an int": {"suites": [1]},
    "params as pairs": {"params": [("p", "1")]},  # to_api's dict() takes them
    "str subclass": {"title": type("Text", (str,), {"__str__": lambda self: "other"})("x")},
    "message not text": {"message": ValueError("boom")},
}


@pytest.mark.parametrize("changes", CASES.values(), ids=CASES.keys())
def test_fast_body_is_the_encoders_own(changes):
    result = _result(**changes)
    assert result.api_json() == to_json_bytes(result.to_api())


@pytest.mark.parametrize("name", ["param_groups", "steps", "fields", "attachments"])
def test_a_none_where_a_list_belongs_fails_as_to_api_fails(name):
    result = _result(**{name: None})
    with pytest.raises(TypeError):
        result.to_api()
    with pytest.raises(TypeError):  # not a body of its own, which a large result would not get
        result.api_json()


def test_fast_body_is_valid_json_with_the_api_fields():
    body = json.loads(_result().api_json())
    assert body["execution"] == {"status": "passed", "start_time": 1796408394.03,
                                 "end_time": 1796408396.138, "duration": 2108,
                                 "stacktrace": None, "thread": "main"}
    assert body["relations"] == {"suite": {"data": [{"title": "tests", "public_id": None},
                                                    {"title": "test_a", "public_id": None}]}}


@pytest.mark.parametrize("params", [{"i": "0"}, {"b": "2", "a": "1"}, {"é": 'x "y"'}])
def test_signature_keeps_the_sorted_json_of_the_params(params):
    # a signature names a Qase case: it must never change from one release to the next
    assert _signature("t.py::test", [], params) == (
        "t.py::test::" + json.dumps(params, sort_keys=True, ensure_ascii=False))
