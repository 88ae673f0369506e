"""The settings table in docs/operations.md names every setting the service reads, in the
order ``openrouter-oauth --help`` prints them (``settings.SETTINGS_HELP``), and no other."""

from __future__ import annotations

from openrouter_oauth.settings import SETTINGS_HELP
from tests.docs.readme import code_spans, table_rows
from tests.harness import REPO


def test_the_operations_settings_table_lists_every_setting():
    rows = table_rows((REPO / "docs" / "operations.md").read_text(), "| variable |")
    documented = [variable for row in rows for variable in code_spans(row[0])]
    assert documented == [variable for variable, _, _ in SETTINGS_HELP]
