"""The documents' code blocks, read from the files themselves (never a copy), with their markers.

The documents are the README, every file in ``docs/`` and the chart's README. The
convention, which ``test_readme.py`` enforces: every shell block (```sh) is preceded,
on the line just before its opening fence and with the same indentation, by an HTML comment
that GitHub does not show:

    <!-- tested: run -->            run with ``bash -euo pipefail`` in a fresh copy of the
                                    checkout; it must exit 0, leave no new file but the
                                    install's, and leave nothing listening
    <!-- tested: serve URL -->      started in the background in that copy; URL must answer
                                    200; then stopped with Ctrl-C's signal, as the README says
    <!-- tested: ci -->             the test command: ``.ci/run`` must exec exactly this block
                                    (CI runs it; it cannot run inside itself)
    <!-- untested-here: REASON -->  not run here, reported as a skip naming REASON (a
                                    Kubernetes cluster, an account, the suite itself)

A shell block without a marker, or with another marker, fails the test. JSON blocks
(```json) must parse.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from tests.harness import REPO

README = REPO / "README.md"
# Every document whose blocks tests/docs checks; README first, whose serve block the
# others' commands assume has made .venv.
DOCUMENTS = (
    README,
    *sorted((REPO / "docs").glob("*.md")),
    REPO / "helm" / "openrouter-oauth" / "README.md",
)
SHELL_LANGUAGES = {"sh", "bash", "shell", "console"}
FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[A-Za-z]*)\s*$")
MARKER = re.compile(r"^\s*<!--\s*(?P<kind>tested|untested-here):\s*(?P<arg>.*?)\s*-->\s*$")


def name(path: Path) -> str:
    """The document's path in the repository, as messages and test ids show it."""
    return str(path.relative_to(REPO))


@dataclass(frozen=True)
class Block:
    document: str  # the file's path in the repository
    line: int  # of the opening fence, 1-based, for messages and test ids
    lang: str
    code: str
    marker: str  # "run", "serve", "ci", "untested-here", or "" when there is none
    argument: str  # the serve URL, or the reason it is untested here

    @property
    def id(self) -> str:
        first = self.code.strip().splitlines()[0] if self.code.strip() else ""
        return f"{self.where}:{first[:40]}"

    @property
    def where(self) -> str:
        return f"{self.document}:{self.line}"


def _marker(previous: str) -> tuple[str, str]:
    found = MARKER.match(previous)
    if found is None:
        return "", ""
    if found["kind"] == "untested-here":
        return "untested-here", found["arg"]
    kind, _, argument = found["arg"].partition(" ")
    return kind, argument.strip()


def _dedent(lines: list[str], indent: str) -> str:
    return "\n".join(line.removeprefix(indent) for line in lines) + "\n"


def blocks(text: str | None = None, path: Path = README) -> list[Block]:
    """Every fenced block of a document (``text`` instead of its file, if given), in order."""
    lines = (path.read_text() if text is None else text).splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        indent, end = opening["indent"], index + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        marker, argument = _marker(lines[index - 1] if index else "")
        code = _dedent(lines[index + 1 : end], indent)
        found.append(Block(name(path), index + 1, opening["lang"], code, marker, argument))
        index = end + 1
    return found


def every_block() -> list[Block]:
    """Every fenced block of every document, in order."""
    return [block for path in DOCUMENTS for block in blocks(path=path)]


def shell_blocks(path: Path | None = None) -> list[Block]:
    """The shell blocks of one document, or of every document."""
    found = every_block() if path is None else blocks(path=path)
    return [block for block in found if block.lang in SHELL_LANGUAGES]


def json_blocks(path: Path | None = None) -> list[Block]:
    """The JSON blocks of one document, or of every document."""
    found = every_block() if path is None else blocks(path=path)
    return [block for block in found if block.lang == "json"]


def only(marker: str) -> Block:
    """The README's one shell block with this marker (it has one serve and one ci block)."""
    matching = [block for block in shell_blocks(README) if block.marker == marker]
    assert len(matching) == 1, f"expected one '{marker}' block, found {len(matching)}"
    return matching[0]


def files_besides_the_install(root: Path) -> set[str]:
    """Every file under ``root`` but the virtualenv and the egg-info the install writes."""
    found: set[str] = set()
    for directory, subdirectories, names in os.walk(root):
        subdirectories[:] = [
            d for d in subdirectories if d != ".venv" and not d.endswith(".egg-info")
        ]
        found.update(str(Path(directory, name).relative_to(root)) for name in names)
    return found


def table_rows(text: str, header: str) -> list[list[str]]:
    """The body rows of the Markdown table whose header row starts with ``header``, as cells.

    ``header`` is the start of the header row, e.g. ``"| variable |"``; the table ends at
    the first line that is not a row.
    """
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(header)]
    assert len(starts) == 1, f"expected one table headed {header!r}, found {len(starts)}"
    rows: list[list[str]] = []
    for line in lines[starts[0] + 2 :]:  # past the header and the |---| line
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def code_spans(cell: str) -> list[str]:
    """The `code` spans of a table cell, e.g. the names in "`ETCD_CERT_FILE`, `ETCD_KEY_FILE`"."""
    return re.findall(r"`([^`]+)`", cell)
