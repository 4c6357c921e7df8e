"""The per-dataset class form: one dataset of a catalog as an object, optionally a class of its own."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from lakeio.errors import InvalidArgumentError

if TYPE_CHECKING:
    from lakeio.catalog import Catalog
    from lakeio.frame import LakeFrame
    from lakeio.metrics import IORecord
    from lakeio.storage import Location


class Dataset:
    """One dataset of a catalog, with its ``{placeholders}`` filled once.

    Subclass it to give a dataset a class of its own, with the columns it is usually read with and
    options of its own (both overridable per call); the name, options and placeholders are checked
    when the object is made, so a typo fails at start-up, not at the first read.

    Example:
        >>> import lakeio
        >>> class Flights(lakeio.Dataset):
        ...     name = "flights"
        ...     columns = ("carrier", "dep_delay", "arr_delay")
        >>> flights = Flights(lakeio.Catalog.load("conf", env="sample"))
        >>> flights.read(where="month = 1").to_pandas().shape
        (224, 3)
    """

    name: ClassVar[str | None] = None
    columns: ClassVar[tuple[str, ...] | None] = None
    options: ClassVar[Mapping[str, Any]] = {}

    def __init__(self, catalog: Catalog, name: str | None = None, **placeholders: Any):
        dataset = name or type(self).name
        if not dataset:
            raise InvalidArgumentError(f"{type(self).__name__} names no dataset: set `name = ...` on the class "
                                       "or pass name=")
        self.catalog, self.dataset, self.placeholders = catalog, dataset, placeholders
        catalog.options(dataset, self.options)
        catalog.location(dataset, **placeholders)

    def read(self, *, columns: Any = None, options: Mapping[str, Any] | None = None, **arguments: Any) -> LakeFrame:
        """:meth:`Catalog.read` of this dataset, with the class's columns and options by default."""
        return self.catalog.read(self.dataset, columns=columns if columns is not None else self.columns,
                                 options={**self.options, **(options or {})}, **self.placeholders, **arguments)

    def write(self, data: Any, *, options: Mapping[str, Any] | None = None, **arguments: Any) -> IORecord:
        """:meth:`Catalog.write` to this dataset, with the class's options by default."""
        return self.catalog.write(self.dataset, data, options={**self.options, **(options or {})},
                                  **self.placeholders, **arguments)

    def exists(self) -> bool:
        """True when the dataset has data in the catalog's environment."""
        return self.catalog.exists(self.dataset, **self.placeholders)

    @property
    def location(self) -> Location:
        """Where the dataset lives in the catalog's environment."""
        return self.catalog.location(self.dataset, **self.placeholders)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.dataset!r}, env={self.catalog.env!r})"
