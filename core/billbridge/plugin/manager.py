"""The plugin manager factory: entry points, blocking, ``check_pending``, routing by key.

Destination plugins are found through the entry point group ``billbridge.destinations``; the
bundled QuickBooks and Xero plugins are registered there exactly as a third party's would be.
A plugin can be blocked by name with ``BILLBRIDGE_DISABLED_PLUGINS=name1,name2``. A plugin that
raises on import (or whose ``register_destinations`` fails) is reported by name in
:attr:`PluginRegistry.failures` and left out; the others keep working.
"""

from __future__ import annotations

import concurrent.futures
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from typing import Any

import attrs
import pluggy

from billbridge.domain.schemas import unusable_panel_schema
from billbridge.errors import (
    BillbridgeError,
    PluginConflict,
    TransientError,
    UnknownDestination,
)
from billbridge.logs import get_logger
from billbridge.plugin import hookspecs
from billbridge.plugin.contract import Destination
from billbridge.plugin.validation import hook_problems

__all__ = [
    "DISABLED_PLUGINS_ENV",
    "ENTRY_POINT_GROUP",
    "PluginCrashed",
    "PluginFailure",
    "PluginInfo",
    "PluginRegistry",
    "create_plugin_manager",
    "load_plugins",
]

ENTRY_POINT_GROUP = "billbridge.destinations"
DISABLED_PLUGINS_ENV = "BILLBRIDGE_DISABLED_PLUGINS"

log = get_logger(__name__)


@attrs.frozen
class PluginFailure:
    """A plugin that could not be loaded, and why (one line, for people)."""

    name: str
    error: str


@attrs.frozen
class PluginInfo:
    """What ``billbridge plugins`` shows for one loaded plugin."""

    name: str
    version: str | None
    hooks: tuple[str, ...]
    destinations: tuple[str, ...]
    blocked: bool = False


def create_plugin_manager() -> pluggy.PluginManager:
    """A fresh plugin manager with billbridge's hook specifications and nothing registered."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    return pm


def _blocked_from_env() -> set[str]:
    raw = os.environ.get(DISABLED_PLUGINS_ENV, "")
    return {name.strip() for name in raw.split(",") if name.strip()}


class PluginRegistry:
    """Loaded plugins, the destinations they serve, and hook calls routed by destination key.

    Build one with :func:`load_plugins`. Each registry has its own ``PluginManager``, so tests
    that register extra plugins never leak them into one another.
    """

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm
        self.failures: list[PluginFailure] = []
        self._destinations: dict[str, Destination] = {}
        self._owners: dict[str, str] = {}
        self._versions: dict[str, str | None] = {}
        self._callers: dict[tuple[str, str], Any] = {}
        #: Plugins of billbridge's own distribution (the bundled destinations).
        self._bundled: set[str] = set()
        self._timeout_for: Callable[[str], float | None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    # -- loading ---------------------------------------------------------------------------

    def register(self, plugin: object, name: str, *, version: str | None = None) -> None:
        """Register a plugin object (module) under ``name`` and collect its destinations."""
        if self.pm.is_blocked(name):
            return
        self._versions[name] = version
        try:
            # pluggy refuses an implementation whose arguments the spec does not have; that must
            # name the plugin and leave the others working, like every other load failure.
            self.pm.register(plugin, name=name)
            # check_pending after every registration, so a misspelt hook names its plugin.
            self.pm.check_pending()
            declared = self._declared_destinations(name)
        except pluggy.PluginValidationError as exc:
            self._fail(name, _invalid_hooks(plugin, exc))
            return
        except BaseException as exc:
            # Even SystemExit or KeyboardInterrupt raised by a plugin's code while it loads:
            # one plugin must not end the engine (a person's Ctrl-C can simply come again).
            self._fail(name, f"its register_destinations failed: {_words(exc)}")
            return
        problems = [p for d in declared for p in _declaration_problems(d)]
        if problems:
            self._fail(name, "; ".join(problems))
            return
        for destination in declared:
            owner = self._owners.get(destination.key)
            if owner is not None and owner != name:
                self.pm.unregister(name=name)
                raise PluginConflict(self._conflict(destination.key, owner, name))
        for destination in declared:
            self._destinations[destination.key] = destination
            self._owners[destination.key] = name
        self._callers.clear()

    def _conflict(self, key: str, first: str, second: str) -> str:
        """Which plugin to block when two claim ``key``: never the bundled one first."""
        bundled = {first, second} & self._bundled
        other = second if first in bundled else first
        if len(bundled) == 1:
            return (
                f"destination {key!r} is claimed by the plugin {other!r} and by billbridge's "
                f"bundled plugin {next(iter(bundled))!r}: block {other!r} with "
                f"{DISABLED_PLUGINS_ENV}={other} (or uninstall it)"
            )
        return (
            f"destination {key!r} is claimed by two plugins, {first!r} and {second!r}: block "
            f"the one that should not serve it with {DISABLED_PLUGINS_ENV}=NAME (or uninstall it)"
        )

    def _declared_destinations(self, name: str) -> list[Destination]:
        plugin = self.pm.get_plugin(name)
        impls = [
            impl
            for impl in self.pm.hook.register_destinations.get_hookimpls()
            if impl.plugin is plugin
        ]
        declared: list[Destination] = []
        for impl in impls:
            result: Any = impl.function()
            for destination in result or ():
                if not isinstance(destination, Destination):
                    raise TypeError(
                        f"register_destinations returned {type(destination).__name__}, "
                        "not billbridge.plugin.contract.Destination"
                    )
                declared.append(destination)
        return declared

    def _fail(self, name: str, error: str) -> None:
        log.error("plugin %r not loaded: %s", name, error)
        self.failures.append(PluginFailure(name, error))
        if self.pm.get_plugin(name) is not None:
            self.pm.unregister(name=name)

    def load_entry_points(self, blocked: Iterable[str] = ()) -> None:
        """Load every plugin of the ``billbridge.destinations`` entry point group."""
        for name in blocked:
            self.pm.set_blocked(name)
        for entry_point in sorted(
            metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name
        ):
            if self.pm.is_blocked(entry_point.name) or self.pm.has_plugin(entry_point.name):
                continue
            try:
                plugin = entry_point.load()
            except BaseException as exc:  # a plugin calling exit() at import included
                # A broken third-party plugin must not take the engine (or the others) down.
                self._fail(
                    entry_point.name,
                    f"its module {entry_point.value.partition(':')[0]!r} could not be imported "
                    f"({_words(exc)}); is the plugin installed with its dependencies?",
                )
                continue
            dist = entry_point.dist
            if dist is not None and dist.name == "billbridge":
                self._bundled.add(entry_point.name)
            self.register(plugin, entry_point.name, version=dist.version if dist else None)

    # -- what is installed ---------------------------------------------------------------------

    @property
    def destinations(self) -> Mapping[str, Destination]:
        """Every destination served, by key."""
        return dict(self._destinations)

    def destination(self, key: str) -> Destination:
        """The destination for ``key``, or :class:`UnknownDestination`."""
        try:
            return self._destinations[key]
        except KeyError:
            raise UnknownDestination(key, list(self._destinations)) from None

    def owner(self, key: str) -> str:
        """The name of the plugin that serves ``key``."""
        self.destination(key)
        return self._owners[key]

    def has_hook(self, key: str, hook: str) -> bool:
        """True when the plugin serving ``key`` implements the (optional) ``hook``."""
        plugin = self.pm.get_plugin(self.owner(key))
        caller = getattr(self.pm.hook, hook)
        return any(impl.plugin is plugin for impl in caller.get_hookimpls())

    def plugins(self) -> list[PluginInfo]:
        """Every loaded plugin with its version, hooks and destinations."""
        infos = []
        for name, plugin in sorted(self.pm.list_name_plugin(), key=lambda item: item[0]):
            if plugin is None:
                continue
            callers = self.pm.get_hookcallers(plugin) or []
            infos.append(
                PluginInfo(
                    name=name,
                    version=self._versions.get(name),
                    hooks=tuple(sorted(c.name for c in callers)),
                    destinations=tuple(k for k, owner in self._owners.items() if owner == name),
                )
            )
        return infos

    # -- calling ----------------------------------------------------------------------------

    def set_timeouts(self, timeout_for: Callable[[str], float | None]) -> None:
        """Bound every call into a destination's plugin: ``timeout_for(key)`` seconds."""
        self._timeout_for = timeout_for

    def call(self, hook: str, key: str, **kwargs: Any) -> Any:
        """Call ``hook`` on the one plugin that owns destination ``key`` (keyword arguments).

        ``destination=key`` is passed for you. Raises :class:`UnknownDestination` for a key no
        plugin serves and :class:`BillbridgeError` when the owner does not implement ``hook``.
        With timeouts set (:meth:`set_timeouts`), a call that does not return in time raises
        :class:`~billbridge.errors.TransientError` (the plugin's thread is left to finish on its
        own: Python cannot stop it); a plugin raising ``SystemExit`` or ``KeyboardInterrupt``
        raises :class:`PluginCrashed` instead, so it cannot end the engine.
        """
        owner = self.owner(key)
        caller = self._callers.get((hook, owner))
        if caller is None:
            others = [p for n, p in self.pm.list_name_plugin() if n != owner and p is not None]
            caller = self.pm.subset_hook_caller(hook, remove_plugins=others)
            self._callers[(hook, owner)] = caller
        if not caller.get_hookimpls():
            raise BillbridgeError(f"plugin {owner!r} does not implement {hook} for {key!r}")
        timeout = self._timeout_for(key) if self._timeout_for is not None else None
        if timeout is None:
            return _contained(owner, hook, caller, key, kwargs)
        future = self._pool().submit(_contained, owner, hook, caller, key, kwargs)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            raise TransientError(
                f"the {owner} plugin did not finish {hook} within {timeout:g} s; "
                "it is tried again later"
            ) from None

    def _pool(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._executor is None:
                # Generous: a hung call keeps its thread, and must not hold up the others.
                self._executor = ThreadPoolExecutor(64, thread_name_prefix="billbridge-plugin")
            return self._executor

    def broadcast(self, hook: str, **kwargs: Any) -> list[Any]:
        """Call a non-``firstresult`` hook on every plugin; one failing does not stop the others."""
        results: list[Any] = []
        for impl in getattr(self.pm.hook, hook).get_hookimpls():
            try:
                wanted = {k: v for k, v in kwargs.items() if k in impl.argnames}
                results.append(impl.function(**wanted))
            except Exception:
                log.exception("plugin %r failed in %s", impl.plugin_name, hook)
        return results


def _invalid_hooks(plugin: object, error: pluggy.PluginValidationError) -> str:
    """Why pluggy refused ``plugin``, in billbridge's words (pluggy's own as a last resort)."""
    problems = hook_problems(plugin, create_plugin_manager())
    if not problems:
        return f"its hooks do not match the contract: {str(error).splitlines()[0]}"
    return "its hooks do not match the contract: " + "; ".join(problems)


def load_plugins(
    *,
    entry_points: bool = True,
    extra: Sequence[tuple[str, object]] = (),
    blocked: Iterable[str] | None = None,
) -> PluginRegistry:
    """Build a :class:`PluginRegistry`: entry point plugins plus ``extra`` ``(name, plugin)``.

    ``blocked`` defaults to the names in ``BILLBRIDGE_DISABLED_PLUGINS``.
    """
    registry = PluginRegistry(create_plugin_manager())
    blocked_names = set(_blocked_from_env() if blocked is None else blocked)
    for name in blocked_names:
        registry.pm.set_blocked(name)
    for name, plugin in extra:
        registry.register(plugin, name)
    if entry_points:
        registry.load_entry_points()
    return registry


_KEY = re.compile(r"[a-z][a-z0-9_]{0,63}")


def _declaration_problems(destination: Destination) -> list[str]:
    """Why a declared destination cannot be served (empty when it can)."""
    if not _KEY.fullmatch(destination.key or ""):
        return [
            f"destination key {destination.key!r} is not valid: lower-case letters, digits and "
            "underscores, starting with a letter (at most 64)"
        ]
    problems = [
        f"{destination.key}: panel schema {e.path or '/'}: {e.message}"
        for e in unusable_panel_schema(destination.schema)
    ]
    return problems[:5]


def _words(exc: BaseException) -> str:
    """An exception as a sentence: its message, or what kind of failure it was."""
    if isinstance(exc, SystemExit):
        return f"the plugin tried to end the program (exit code {exc.code!r})"
    if isinstance(exc, KeyboardInterrupt):
        return "the plugin raised an interruption"
    text = str(exc).strip()
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        return f"it needs the module {exc.name!r}, which is not installed"
    return text or "it failed without a message"


class PluginCrashed(BillbridgeError):
    """A plugin raised ``SystemExit`` or ``KeyboardInterrupt`` inside a hook."""


def _contained(owner: str, hook: str, caller: Any, key: str, kwargs: dict[str, Any]) -> Any:
    try:
        return caller(destination=key, **kwargs)
    except (SystemExit, KeyboardInterrupt) as exc:
        raise PluginCrashed(f"the {owner} plugin tried to stop the program in {hook}") from exc
