"""What is wrong with a plugin's hook implementations, said in billbridge's words.

pluggy refuses an implementation whose name is no hook, or which names an argument its hook
does not have; its message names pluggy's internals. :func:`hook_problems` says the same for
people, with the hook's real arguments and a "did you mean" for misspellings. The plugin
manager reports it when a plugin cannot be loaded (``billbridge plugins``), and the conformance
kit's checks build on :func:`implementations`.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Iterator, Mapping
from typing import Any

import attrs
import pluggy

__all__ = ["Implementation", "hook_problems", "implementations", "parameters"]


@attrs.frozen
class Implementation:
    """One ``@hookimpl`` of a plugin: the attribute holding it and the hook it implements."""

    attribute: str
    hook: str
    function: Any
    opts: Mapping[str, Any]
    spec: Any


def implementations(plugin: object, pm: pluggy.PluginManager) -> Iterator[Implementation | str]:
    """Every hook implementation of ``plugin``, or a problem for one that names no hook."""
    for attribute in sorted(dir(plugin)):
        opts = _hookimpl_opts(pm, plugin, attribute)
        if opts is None:
            continue
        hook_name = opts.get("specname") or attribute
        caller = getattr(pm.hook, hook_name, None)
        spec = getattr(caller, "spec", None)
        if spec is None:
            known = sorted(name for name in dir(pm.hook) if not name.startswith("_"))
            near = difflib.get_close_matches(hook_name, known, n=1)
            hint = f" (did you mean {near[0]}?)" if near else f"; the hooks are {', '.join(known)}"
            yield f"{attribute}: {hook_name!r} is not a billbridge hook{hint}"
            continue
        yield Implementation(attribute, hook_name, getattr(plugin, attribute), opts, spec)


def parameters(function: Any) -> list[inspect.Parameter] | None:
    """The function's parameters, or ``None`` when they cannot be read."""
    try:
        return list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        return None


def hook_problems(plugin: object, pm: pluggy.PluginManager) -> list[str]:
    """The implementations pluggy refuses: unknown hooks, and arguments a hook does not have."""
    problems = []
    for found in implementations(plugin, pm):
        if isinstance(found, str):
            problems.append(found)
            continue
        allowed = set(found.spec.argnames) | set(found.spec.kwargnames)
        for parameter in parameters(found.function) or ():
            if parameter.name in ("self", "cls") or parameter.kind in (
                parameter.VAR_POSITIONAL,
                parameter.VAR_KEYWORD,
                parameter.KEYWORD_ONLY,
            ):
                continue
            if parameter.name not in allowed:
                near = difflib.get_close_matches(parameter.name, sorted(allowed), n=1)
                hint = f" (did you mean {near[0]!r}?)" if near else ""
                problems.append(
                    f"{found.hook}: argument {parameter.name!r} is not in the contract{hint}; "
                    f"the arguments are {', '.join(found.spec.argnames)}"
                )
    return problems


def _hookimpl_opts(pm: pluggy.PluginManager, plugin: object, attribute: str) -> Any:
    """pluggy's hook options for ``plugin.attribute``, or ``None`` when it is not a hook."""
    try:
        return pm.parse_hookimpl_opts(plugin, attribute)
    except Exception:  # a property that raises when read is not a hook implementation
        return None
