"""Fixtures for the attack regressions: a hostile client web host on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.document_host import DocumentHost


@pytest.fixture
def document_host() -> Iterator[DocumentHost]:
    host = DocumentHost().start()
    yield host
    host.stop()


@pytest.fixture
def docs_service(start_service):
    """A service that accepts client_id URLs on loopback (the development setting)."""
    return start_service(METADATA_DOCUMENTS_ALLOW_LOOPBACK="true", RATE_LIMITS="off")
