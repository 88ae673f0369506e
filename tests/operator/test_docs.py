"""The OAuthProvider examples in docs/deploy.md are valid against the CRD."""

from __future__ import annotations

import re

import jsonschema
import yaml

from tests.harness import REPO

from .conftest import SCHEMA


def test_deploy_examples_match_the_crd():
    blocks = re.findall(r"```yaml\n(.*?)```", (REPO / "docs" / "deploy.md").read_text(), re.S)
    examples = [
        doc
        for block in blocks
        for doc in yaml.safe_load_all(block)
        if doc and doc.get("kind") == "OAuthProvider"
    ]
    assert len(examples) >= 2
    for example in examples:
        jsonschema.validate(example, SCHEMA)
