"""Make libcst's parse cheaper in a process that only parses: the parser sandbox's child.

A parse spends most of its time building Python objects for the tree, and three costs there do
nothing for a process that never builds or mutates nodes by hand:

* validation: CSTNode.__post_init__ re-checks every node as it is built, although the parser only
  builds valid nodes (libcst's own comment on __post_init__ suggests taking it off the parse path);
* frozen-dataclass constructors: each field is set through object.__setattr__ because the class
  forbids assignment, several times slower than a plain slot store;
* the cycle collector: a tree is thousands of young container objects, so the collector runs
  over and over during a parse, though a libcst tree has no cycles and reference counting frees it.

Code generation, which the detector's gather pass rides for positions, has one such cost too:
every expression enters a generator-based `_parenthesize` context manager, though almost none has
parentheses of its own; for those the tuned version hands back what the original would have
entered between the (absent) parentheses.

`tune_parser()` removes these for the rest of the process; `collector_paused()` removes the
cycle collector around one analysis. The same nodes, code and positions come out (tests compare
trees, generated code and findings with untuned libcst).
"""

from __future__ import annotations

import dataclasses
import functools
import gc
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import libcst as cst
from libcst._nodes.expression import _BaseParenthesizedNode

# The sentinel dataclasses writes for a default_factory parameter, so signatures stay identical.
_FACTORY_SENTINEL: Any = getattr(dataclasses, "_HAS_DEFAULT_FACTORY", object())

Patch = tuple[type, str, Any]  # (class, attribute, value to set there, or _ABSENT to delete it)
_ABSENT = object()


def node_classes() -> list[type[cst.CSTNode]]:
    """CSTNode and every subclass libcst defines, bases before subclasses."""
    ordered: list[type[cst.CSTNode]] = [cst.CSTNode]
    seen = {cst.CSTNode}
    for cls in ordered:
        for sub in cls.__subclasses__():
            if sub not in seen:
                seen.add(sub)
                ordered.append(sub)
    return ordered


def plain_init(cls: type) -> Callable[..., None] | None:
    """An __init__ with the dataclass's exact signature that stores each field in its slot.

    None when the class has something this simple form would get wrong (keyword-only or
    init=False fields), so a future libcst degrades to its own constructor, never to a wrong one.
    """
    fields = dataclasses.fields(cls)
    if any(not f.init or getattr(f, "kw_only", False) for f in fields):
        return None
    namespace: dict[str, Any] = {"_FACTORY": _FACTORY_SENTINEL}
    params, body = [], []
    for index, field in enumerate(fields):
        if field.default is not dataclasses.MISSING:
            namespace[f"_default{index}"] = field.default
            params.append(f"{field.name}=_default{index}")
            body.append(f"    self.{field.name} = {field.name}")
        elif field.default_factory is not dataclasses.MISSING:
            namespace[f"_factory{index}"] = field.default_factory
            params.append(f"{field.name}=_FACTORY")
            body.append(f"    self.{field.name} = _factory{index}() if {field.name} is _FACTORY else {field.name}")
        else:
            params.append(field.name)
            body.append(f"    self.{field.name} = {field.name}")
    source = f"def __init__(self, {', '.join(params)}) -> None:\n" + ("\n".join(body) or "    pass") + "\n"
    exec(compile(source, f"<plain_init {cls.__qualname__}>", "exec", dont_inherit=True), namespace)  # noqa: S102 - built from field names
    function = namespace["__init__"]
    function.__qualname__ = f"{cls.__qualname__}.__init__"
    function.__annotations__ = dict(getattr(vars(cls).get("__init__"), "__annotations__", {}))
    return function


def _parenthesize_fast_path(original: Callable[..., Any]) -> Callable[..., Any]:
    """_parenthesize that skips the generator when the node has no parentheses of its own."""

    def _parenthesize(self: Any, state: Any) -> Any:
        if not self.lpar and not self.rpar:
            # the original emits no parens and enters exactly this around the node's tokens
            return state.record_syntactic_position(self)
        return original(self, state)

    return _parenthesize


@functools.cache
def _patches() -> tuple[Patch, ...]:
    """What tune_parser changes, as (class, attribute, new value); _ABSENT means delete.

    Built once per process (about 20 ms of compiling): a parent that calls prepare() before it
    forks parser children hands them the built constructors.
    """
    patches: list[Patch] = [(cst.CSTNode, "__post_init__", lambda self: None)]
    original = vars(_BaseParenthesizedNode)["_parenthesize"]  # cached: built before any patch
    patches.append((_BaseParenthesizedNode, "_parenthesize", _parenthesize_fast_path(original)))
    for cls in node_classes():
        if not dataclasses.is_dataclass(cls) or "__init__" not in vars(cls):
            continue
        init = plain_init(cls)
        if init is None:
            continue
        patches.append((cls, "__init__", init))
        # With the frozen __setattr__ gone the slot stores above take CPython's fast path.
        if cls.__dataclass_params__.frozen:  # type: ignore[attr-defined]
            patches += [(cls, "__setattr__", _ABSENT), (cls, "__delattr__", _ABSENT)]
    return tuple(patches)


def prepare() -> None:
    """Build the constructors now, so that children forked later only install them."""
    _patches()


def _apply(patches: Iterable[Patch]) -> list[Patch]:
    undo: list[Patch] = []
    for cls, name, value in patches:
        before = vars(cls).get(name, _ABSENT)
        if value is before:
            continue
        undo.append((cls, name, before))
        if value is _ABSENT:
            delattr(cls, name)
        else:
            setattr(cls, name, value)
    return undo


def tune_parser() -> None:
    """Apply the patches for the rest of this process."""
    _apply(_patches())


@contextmanager
def tuned_parser() -> Iterator[None]:
    """tune_parser() for a block, then libcst as it was (benchmarks and tests in one process)."""
    undo = _apply(_patches())
    try:
        yield
    finally:
        _apply(list(reversed(undo)))


@contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection during the block (reference counting still frees the tree)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
