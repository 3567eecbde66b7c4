"""The fenced code examples of the documentation, as tests see them.

Every fence names its language (```` ```python ````, ```` ```bash ````, ```` ```text ````...).
Python and shell examples run (``tests/e2e/test_doc_examples.py``) unless an HTML comment on
the line before the fence says otherwise, with the reason in parentheses::

    <!-- doc-test: skip (needs a real Xero app) -->             cannot run here, and why
    <!-- doc-test: elsewhere (tests/e2e/test_api_docs.py) -->    another test runs or checks it
    <!-- doc-test: pytest -->    run the document's Python examples up to here as a test module

The README's Development section documents the markers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import attrs

from support import ROOT

__all__ = [
    "DATA",
    "DOCUMENTS",
    "MARKERS",
    "PYTHON",
    "SHELL",
    "Example",
    "examples",
    "runnable",
]

PYTHON = frozenset({"python", "py"})
SHELL = frozenset({"bash", "sh", "shell"})
DATA = frozenset({"json", "toml"})
MARKERS = ("skip", "elsewhere", "pytest")

_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
_MARKER = re.compile(r"^<!--\s*doc-test:\s*(?P<kind>[a-z]+)\s*(?:\((?P<reason>.*)\))?\s*-->\s*$")


def _documents() -> tuple[Path, ...]:
    found = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    found += sorted((ROOT / "examples").glob("*/README.md"))
    return tuple(found)


#: The documents whose examples are tested: the README, docs/ and each example's README.
DOCUMENTS = _documents()


@attrs.frozen
class Example:
    """One fenced block of a document."""

    document: Path
    #: The line of the opening fence (1-based).
    line: int
    language: str
    code: str
    #: ``skip``, ``elsewhere`` or ``pytest`` from a ``doc-test`` marker, else ``None``.
    marker: str | None = None
    reason: str | None = None

    @property
    def where(self) -> str:
        """``docs/guide.md:123``."""
        return f"{self.document.relative_to(ROOT)}:{self.line}"


def examples(document: Path) -> list[Example]:
    """Every fenced block of ``document``, in order, with its marker."""
    lines = document.read_text(encoding="utf-8").splitlines()
    found: list[Example] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        fence = opening.group("fence")
        language = opening.group("info").strip().split(" ")[0].lower()
        marker, reason = _marker_before(lines, index)
        body: list[str] = []
        end = index + 1
        while end < len(lines) and not lines[end].strip().startswith(fence):
            body.append(lines[end])
            end += 1
        if end == len(lines):
            raise ValueError(f"{document}:{index + 1}: the fence is never closed")
        found.append(Example(document, index + 1, language, "\n".join(body) + "\n", marker, reason))
        index = end + 1
    return found


def _marker_before(lines: list[str], index: int) -> tuple[str | None, str | None]:
    """The ``doc-test`` marker on the line before a fence (blank lines between allowed)."""
    before = index - 1
    while before >= 0 and not lines[before].strip():
        before -= 1
    if before < 0:
        return None, None
    match = _MARKER.match(lines[before].strip())
    if match is None:
        if "doc-test" in lines[before]:
            raise ValueError(f"line {before + 1}: a doc-test marker this parser cannot read")
        return None, None
    return match.group("kind"), (match.group("reason") or "").strip() or None


def runnable(document: Path, languages: frozenset[str]) -> Iterator[Example]:
    """The document's examples in ``languages`` that run here (not skipped, not elsewhere)."""
    for example in examples(document):
        if example.language in languages and example.marker not in ("skip", "elsewhere"):
            yield example
