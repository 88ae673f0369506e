"""The chart's README lists exactly the top-level keys of values.yaml, in its order, and
gives the default of each key whose value is a plain value or an empty list or map."""

from __future__ import annotations

import json

import yaml

from tests.docs.readme import code_spans, table_rows
from tests.harness import REPO

CHART = REPO / "helm" / "openrouter-oauth"


def documented() -> dict[str, str]:
    """Each key of the chart README's values table, with its default cell."""
    rows = table_rows((CHART / "README.md").read_text(), "| key |")
    return {code_spans(key)[0]: default for key, default, _ in rows}


def test_the_values_table_lists_every_top_level_key():
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert list(documented()) == list(values)


def test_plain_defaults_are_those_of_values_yaml():
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    table = documented()
    plain = {key: v for key, v in values.items() if not isinstance(v, dict) or not v}
    assert plain, "values.yaml has plain top-level values"
    for key, v in plain.items():
        assert table[key] == f"`{json.dumps(v)}`", key
