"""Every relative link between the documents leads somewhere: a file in the repository and,
when the link names one, a heading of that file.

A reader following "see [Uninstall](deploy.md#uninstall)" must land on it, however the
text moves between files. Anchors are GitHub's: the heading in lower case, punctuation
removed, spaces turned into hyphens, a repeated heading numbered ``-1``, ``-2``.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from tests.docs.readme import DOCUMENTS, FENCE, name
from tests.harness import REPO

LINKED = (*DOCUMENTS, REPO / "SECURITY.md", REPO / "CHANGELOG.md")
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6} +(.*?)\s*#*\s*$")
EXTERNAL = ("http://", "https://", "mailto:")


def prose(text: str, *, code_spans: bool = False) -> list[str]:
    """The lines outside fenced code blocks, with `code spans` removed unless asked for
    (a heading's anchor includes their text)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):  # an opening or a closing fence
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line if code_spans else re.sub(r"`[^`]*`", "", line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text."""
    text = heading.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)  # \w keeps letters, digits and "_", as GitHub does
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    seen: Counter[str] = Counter()
    for line in prose(path.read_text(), code_spans=True):
        heading = HEADING.match(line)
        if heading:
            base = slug(heading[1])
            found.add(f"{base}-{seen[base]}" if seen[base] else base)
            seen[base] += 1
    return found


def links(path: Path) -> list[str]:
    return [target for line in prose(path.read_text()) for target in LINK.findall(line)]


def test_the_slugs_are_githubs():
    assert slug("Faults under load: the shape") == "faults-under-load-the-shape"
    assert slug("Three kinds of `client_id`, none stored") == "three-kinds-of-client_id-none-stored"
    assert slug("The documentation's commands") == "the-documentations-commands"
    assert slug("It runs — now what?") == "it-runs--now-what"


def test_links_are_found_outside_code_only():
    text = "[a](x.md) `[b](y.md)`\n```sh\n[c](z.md)\n```\n![img](i.png) [d](w.md#h)\n"
    assert [t for line in prose(text) for t in LINK.findall(line)] == ["x.md", "w.md#h"]


@pytest.mark.parametrize("path", LINKED, ids=name)
def test_every_relative_link_resolves(path: Path):
    broken = []
    for target in links(path):
        if target.startswith(EXTERNAL):
            continue
        file, _, anchor = target.partition("#")
        destination = (path.parent / file).resolve() if file else path
        if not destination.is_relative_to(REPO) or not destination.exists():
            broken.append(f"{target}: no such file in the repository")
        elif anchor and destination.suffix == ".md" and anchor not in anchors(destination):
            broken.append(f"{target}: {name(destination)} has no heading #{anchor}")
    assert not broken, f"{name(path)}: " + "; ".join(broken)


def test_no_document_cites_the_engineers_reference():
    """Those notes are not in a user's clone."""
    for path in LINKED:
        assert "openrouter.md" not in path.read_text(), name(path)
