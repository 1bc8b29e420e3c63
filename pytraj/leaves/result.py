"""Results: one or several named items, per trajectory or per run."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from pytraj.errors import (
    NodeAttributeError,
    NodeExistsError,
    NodeNotFoundError,
    NodeTypeError,
)
from pytraj.leaves.base import Leaf, check_picklable, register_leaf_class
from pytraj.leaves.values import describe
from pytraj.storage.records import LazyValue
from pytraj.tree.names import validate_name

__all__ = ["PickleResult", "Result"]


@register_leaf_class
class Result(Leaf):
    """A result: named items, each any storable value.

    ``Result("z", 42)`` holds one item named ``z``; ``Result("stats", mean=1.0,
    std=0.2)`` holds two, reached as ``result.mean`` or ``result["mean"]``.

    A result added during a run belongs to that run (``per_run``): its values live in
    storage, one per run, and natural naming returns a per-run view outside a run.
    """

    __slots__ = ("_items", "_loader", "_per_run")
    kind = "result"

    def __init__(
        self, name: str, /, *args: Any, comment: str = "", per_run: bool = False, **items: Any
    ) -> None:
        # ``name`` is positional-only so that an item may be called ``name``
        # (``Result("point", name="a")``); an item called ``comment`` or ``per_run`` is
        # the single positional value (``Result("comment", 1)``) or set with result[...].
        super().__init__(name, comment=comment)
        if len(args) > 1:
            raise TypeError(
                f"result {name!r} takes one positional value (stored as item {name!r}); "
                "name further items as keywords"
            )
        if args:
            if name in items:
                raise NodeExistsError(f"item {name!r} of result {name!r} is given twice")
            items = {name: args[0], **items}
        self._per_run = per_run
        self._items: dict[str, Any] = {}
        # Lazily loaded items: called once, on first access, to fetch values from a file.
        self._loader: Callable[[], dict[str, Any]] | None = None
        for item, value in items.items():
            self._set_item(item, value)

    @classmethod
    def restore(
        cls,
        name: str,
        items: dict[str, Any],
        *,
        comment: str = "",
        per_run: bool = False,
        loader: Callable[[], dict[str, Any]] | None = None,
    ) -> Result:
        """Rebuild a stored result without checking its items again.

        ``items`` is held as given: values may be :class:`LazyValue` placeholders, or
        None for a per-run result (its values live in storage). With ``loader``, the
        values are fetched by calling it once, on first access.
        """
        leaf = cls(name, comment=comment, per_run=per_run)
        leaf._items = items
        leaf._loader = loader
        return leaf

    # -- items -----------------------------------------------------------------------
    @property
    def per_run(self) -> bool:
        """Whether the result holds one value per run (added during runs)."""
        return self._per_run

    @property
    def items(self) -> dict[str, Any]:
        """The items by name (a copy; loads them from the file on first access)."""
        if self._per_run:
            return {item: self[item] for item in self._items}
        self._loaded()
        return {item: self[item] for item in self._items}

    def item_names(self) -> list[str]:
        """Names of the items, in the order they were added."""
        return list(self._items)

    @property
    def raw_items(self) -> dict[str, Any]:
        """The items as held, loading nothing: the same dict, not a copy.

        Runs read it for every value they add (the hot path). Values not read from the
        file yet are :class:`LazyValue` placeholders; a per-run result holds None for
        each item. Do not change it; add names with :meth:`declare_items`.
        """
        return self._items

    @property
    def is_loaded(self) -> bool:
        """Whether the items were read from the file (False until first accessed)."""
        return self._loader is None

    def declare_items(self, names: Iterable[str]) -> bool:
        """Add item names without values (a per-run result's values live in storage).

        Names held already are kept as they are; returns whether any name was new.
        """
        items = self._items
        added = False
        for name in names:
            if name not in items:
                items[name] = None
                added = True
        return added

    def _loaded(self) -> dict[str, Any]:
        if self._loader is not None:
            loader, self._loader = self._loader, None
            try:
                self._items.update(loader())
            except BaseException:
                self._loader = loader  # leave it loadable, e.g. after allow_pickle=False
                raise
        return self._items

    def _set_item(self, item: str, value: Any) -> None:
        validate_name(item, parent=self.full_name or self.name)
        self.check_value(value, f"{self.full_name or self.name}[{item!r}]")
        self._items[item] = value

    def set(self, item: str, value: Any) -> None:
        """Set ``item`` to ``value`` (adding it when new)."""
        if self._per_run:
            root = self.root
            root.lifecycle.set_value(self, item, value)  # type: ignore[attr-defined]  # a Trajectory
            return
        self._loaded()
        self._set_item(item, value)

    def __setitem__(self, item: str, value: Any) -> None:
        self.set(item, value)

    def __getitem__(self, item: str) -> Any:
        if self._per_run:
            return self.root.lifecycle.value(self, item)  # type: ignore[attr-defined]
        items = self._loaded()
        if item not in items:
            raise NodeNotFoundError(
                f"result {self.full_name!r} has no item {item!r}; it has {list(items)}"
            )
        value = items[item]
        if type(value) is LazyValue:
            value = items[item] = value.load()
        return value

    def __getattr__(self, item: str) -> Any:
        if item.startswith("_"):
            raise AttributeError(item)
        try:
            return self[item]
        except NodeNotFoundError as exc:
            raise NodeAttributeError(str(exc)) from None

    def __contains__(self, item: object) -> bool:
        return item in self.item_names()

    def __iter__(self) -> Iterator[str]:
        return iter(self.item_names())

    def __len__(self) -> int:
        return len(self.item_names())

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self.item_names()))

    @property
    def value(self) -> Any:
        """The single item's value (an error when the result has several items)."""
        names = self.item_names()
        if len(names) != 1:
            raise NodeTypeError(
                f"result {self.full_name!r} has {len(names)} items {names}; pick one with "
                "result[name]"
            )
        return self[names[0]]

    def natural_value(self) -> Any:
        if self._per_run:
            names = self.item_names()
            if len(names) == 1:
                return self[names[0]]
            return self
        names = self.item_names()
        if len(names) == 1:
            return self[names[0]]
        return self

    def _summary(self) -> str:
        names = self.item_names()
        if self._per_run:
            return f"per run: {', '.join(names)}"
        if self._loader is not None:
            return f"{len(names)} items (not loaded)"
        return ", ".join(f"{item}: {describe(value)}" for item, value in self._items.items())

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.full_name or self.name!r} {self._summary()}>"


@register_leaf_class
class PickleResult(Result):
    """A result whose items are stored pickled: for objects no other leaf can hold.

    Pickled values are unpickled only when accessed, and refused when a file is
    loaded with ``allow_pickle=False``.
    """

    __slots__ = ()
    pickles_values = True

    def check_value(self, value: Any, where: str) -> None:
        check_picklable(value, where)
