"""Write a CycloneDX 1.5 JSON SBOM of the Python packages the running interpreter can import.

Run by the Containerfile with the image's own venv interpreter, after the install, so the
list is what the image runs, read from each installed distribution's metadata
(importlib.metadata): no network and no dependency beyond the standard library.

    python sbom.py NAME VERSION OUTPUT
"""

from __future__ import annotations

import json
import re
import sys
import uuid
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

SPEC_VERSION = "1.5"
# The trove classifier prefix whose last part names a license, e.g. "MIT License".
LICENSE_CLASSIFIER = "License :: "


def normalized(name: str) -> str:
    """A distribution's name as PyPI and purl's pypi type compare it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def purl(name: str, version: str) -> str:
    return f"pkg:pypi/{normalized(name)}@{version}"


def licenses(dist: metadata.Distribution) -> list[dict[str, Any]]:
    """The SPDX expression when the package declares one (PEP 639), else its trove licenses."""
    expression = dist.metadata.get("License-Expression")
    if expression:
        return [{"expression": expression}]
    classifiers = dist.metadata.get_all("Classifier") or []
    names = [c.rsplit(" :: ", 1)[-1] for c in classifiers if c.startswith(LICENSE_CLASSIFIER)]
    return [{"license": {"name": name}} for name in dict.fromkeys(names)]


def component(dist: metadata.Distribution) -> dict[str, Any]:
    name, version = dist.metadata["Name"], dist.version
    entry: dict[str, Any] = {
        "type": "library",
        "bom-ref": purl(name, version),
        "name": name,
        "version": version,
        "purl": purl(name, version),
    }
    found = licenses(dist)
    if found:
        entry["licenses"] = found
    return entry


def bom(name: str, version: str) -> dict[str, Any]:
    # One entry per distribution name: the first on sys.path wins, as it does on import.
    seen: dict[str, metadata.Distribution] = {}
    for dist in metadata.distributions():
        seen.setdefault(normalized(dist.metadata["Name"]), dist)
    return {
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": uuid.uuid4().urn,
        "version": 1,
        "metadata": {
            "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "tools": {"components": [{"type": "application", "name": "scripts/sbom.py"}]},
            "component": {"type": "container", "bom-ref": name, "name": name, "version": version},
        },
        "components": [component(seen[key]) for key in sorted(seen)],
    }


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: sbom.py NAME VERSION OUTPUT", file=sys.stderr)
        return 2
    name, version, output = argv
    Path(output).write_text(json.dumps(bom(name, version), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
