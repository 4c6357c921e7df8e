"""A contract skeleton from data: its schema and a one-pass profile (``lakeio contract init``).

Each column gets its logical type, ``nullable: false`` where no value is null, ``between`` its
observed min and max (ordered types), ``in_set`` its labels when a string column has few, and
``unique`` when every non-null value is distinct (as Deequ's constraint suggestion proposes
completeness, range, categorical and uniqueness constraints). The header comments give each
column's profile: nulls, distinct values. The result is a start to edit, and loads back as a valid
contract that passes on the data it came from.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import yaml

from lakeio.validation.arrow_backend import logical_type
from lakeio.validation.contract import FLOAT_TYPES, LogicalType
from lakeio.validation.semantics import plain

if TYPE_CHECKING:
    import pyarrow as pa


class _ColumnProfile:
    def __init__(self, logical: LogicalType, max_labels: int):
        self.logical, self.max_labels = logical, max_labels
        self.nulls = self.rows = 0
        self.low = self.high = None
        self.labels: set | None = set() if logical.name == "string" else None
        self.keys: list = []  # the non-null values, for the distinct count at the end

    def update(self, array: pa.ChunkedArray | pa.Array) -> None:
        import pyarrow.compute as pc

        self.nulls += array.null_count
        self.rows += len(array)
        if self.logical.name not in ("boolean", *FLOAT_TYPES):
            self.keys.append(pc.drop_null(array))
        if self.logical.is_ordered and self.logical.name != "string":
            extremes = pc.min_max(array).as_py()
            low, high = extremes["min"], extremes["max"]
            if low is not None:
                self.low = low if self.low is None else min(self.low, low)
                self.high = high if self.high is None else max(self.high, high)
        if self.labels is not None:
            self.labels.update(v for v in pc.unique(array).to_pylist() if v is not None)
            if len(self.labels) > self.max_labels:
                self.labels = None  # too many to be labels

    def distinct(self) -> int | None:
        """Distinct non-null values (None for booleans and floats, never keys)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        if self.logical.name in ("boolean", *FLOAT_TYPES):
            return None
        if not self.keys:
            return 0
        return len(pc.unique(pa.chunked_array(self.keys)))

    def spec(self, distinct: int | None) -> dict[str, Any]:
        body: dict[str, Any] = {"type": str(self.logical)}
        if self.nulls == 0:
            body["nullable"] = False
        checks: list[Any] = []
        if distinct is not None and distinct > 1 and distinct == self.rows - self.nulls and not self.labels:
            checks.append("unique")  # a key; a column of few labels is none, however few its rows
        if self.low is not None:
            checks.append({"between": [plain(self.low), plain(self.high)]})
        if self.labels:
            checks.append({"in_set": sorted(self.labels)})
        if checks:
            body["checks"] = checks
        return body


def contract_skeleton(dataset: str, batches: Iterable[pa.RecordBatch] | pa.RecordBatchReader, *,
                      max_labels: int = 20) -> str:
    """The YAML text of a contract for data streamed as ``batches`` (one pass, never all in memory).

    Example:
        >>> import pyarrow as pa
        >>> table = pa.table({"carrier": ["UA", "AA", None], "delay": [3.0, -1.5, 7.0]})
        >>> print(contract_skeleton("demo", table.to_batches()))           # doctest: +ELLIPSIS
        # A contract skeleton for dataset 'demo', profiled from 3 rows ...
        # Bounds and label sets are what this data holds: widen them to what the data may hold.
        #   carrier: 1 null(s), 2 distinct value(s)
        #   delay: 0 null(s)
        columns:
          carrier:
            type: string
            checks:
            - in_set: [AA, UA]
          delay:
            type: float64
            nullable: false
            checks:
            - between: [-1.5, 7.0]
        checks:
        - row_count: {min: 1}
        <BLANKLINE>
    """
    profiles: dict[str, _ColumnProfile] = {}
    unsupported: dict[str, str] = {}
    rows = 0
    for batch in batches:
        if not profiles and not unsupported:
            for field in batch.schema:
                logical = logical_type(field.type)
                if isinstance(logical, LogicalType):
                    profiles[field.name] = _ColumnProfile(logical, max_labels)
                else:
                    unsupported[field.name] = logical
        rows += batch.num_rows
        for name, profile in profiles.items():
            profile.update(batch.column(name))
    document: dict[str, Any] = {}
    if unsupported:
        document["extra_columns"] = "warning"  # the columns left out below
    distinct = {name: profile.distinct() for name, profile in profiles.items()}
    document["columns"] = {name: profile.spec(distinct[name]) for name, profile in profiles.items()}
    document["checks"] = [{"row_count": {"min": 1}}]
    head = [f"# A contract skeleton for dataset {dataset!r}, profiled from {rows} rows by `lakeio contract init`.",
            "# Bounds and label sets are what this data holds: widen them to what the data may hold."]
    head += [f"#   {name}: {profile.nulls} null(s)"
             + (f", {distinct[name]} distinct value(s)" if distinct[name] is not None else "")
             for name, profile in profiles.items()]
    head += [f"# Column {name!r} ({arrow}) has no logical type in lakeio: not listed." for name, arrow in unsupported.items()]
    return "\n".join(head) + "\n" + yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True)


class _Dumper(yaml.SafeDumper):
    """Lists and maps of plain values on one line, the way contracts are written."""


def _flow_list(dumper: yaml.SafeDumper, value: list) -> yaml.Node:
    flow = all(not isinstance(item, (dict, list)) for item in value)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flow)


def _flow_map(dumper: yaml.SafeDumper, value: dict) -> yaml.Node:
    flow = all(not isinstance(item, (dict, list)) for item in value.values())
    return dumper.represent_mapping("tag:yaml.org,2002:map", value.items(), flow_style=flow)


_Dumper.add_representer(list, _flow_list)
_Dumper.add_representer(dict, _flow_map)
