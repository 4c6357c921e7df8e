"""A contract skeleton from data: its schema and a one-pass profile (``lakeio contract init``).

Each column gets its logical type, ``nullable: false`` where no value is null, ``between`` its
observed min and max (ordered types), and ``in_set`` its labels when a string column has few. The
result is a start to edit, and loads back as a valid contract.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import yaml

from lakeio.validation.arrow_backend import logical_type
from lakeio.validation.contract import LogicalType
from lakeio.validation.semantics import plain

if TYPE_CHECKING:
    import pyarrow as pa


class _ColumnProfile:
    def __init__(self, logical: LogicalType, max_labels: int):
        self.logical, self.max_labels = logical, max_labels
        self.nulls = 0
        self.low = self.high = None
        self.labels: set | None = set() if logical.name == "string" else None

    def update(self, array: pa.ChunkedArray | pa.Array) -> None:
        import pyarrow.compute as pc

        self.nulls += array.null_count
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

    def spec(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": str(self.logical)}
        if self.nulls == 0:
            body["nullable"] = False
        checks: list[dict] = []
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
    document["columns"] = {name: profile.spec() for name, profile in profiles.items()}
    document["checks"] = [{"row_count": {"min": 1}}]
    head = [f"# A contract skeleton for dataset {dataset!r}, profiled from {rows} rows by `lakeio contract init`.",
            "# Bounds and label sets are what this data holds: widen them to what the data may hold."]
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
