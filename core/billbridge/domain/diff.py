"""Where two JSON-like documents differ, as paths a person can read (``lineItems[2].subtotal``).

Used to say what changed when a bill version arrives again with other content, and to show a
preview mismatch key by key instead of two whole bodies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["differences"]


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def differences(before: Any, after: Any, *, path: str = "", limit: int = 10) -> list[str]:
    """Paths at which ``after`` differs from ``before`` (at most ``limit``), depth first.

    A path names the deepest differing key or index; a key present on one side only counts as
    a difference at that key, and a list of another length at the list itself.
    """
    found: list[str] = []
    _walk(before, after, path, found, limit)
    return found


def _walk(before: Any, after: Any, path: str, found: list[str], limit: int) -> None:
    if len(found) >= limit:
        return
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        for key in list(dict.fromkeys([*before, *after])):
            if len(found) >= limit:
                return
            if key not in before or key not in after:
                found.append(_join(path, str(key)))
            else:
                _walk(before[key], after[key], _join(path, str(key)), found, limit)
        return
    if _is_list(before) and _is_list(after):
        if len(before) != len(after):
            found.append(f"{path or '/'} ({len(before)} items → {len(after)})")
            return
        for index, (left, right) in enumerate(zip(before, after, strict=True)):
            _walk(left, right, f"{path}[{index}]", found, limit)
        return
    if before != after:
        found.append(path or "/")


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)
