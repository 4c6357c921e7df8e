"""The table as it will be after a write, for the contract's table checks.

Row checks judge the rows a write brings; table checks (row count, uniqueness, null fraction, all
values present) judge the table the write leaves. :class:`TableAfter` knows, for each kind of write,
which rows of the current table stay and which incoming rows land:

========================  ========================================  ==============================
write                     rows of the current table that stay      incoming rows that land
========================  ========================================  ==============================
error, overwrite          none                                      all
append                    all                                       all
overwrite_partitions      those outside the partitions written      all
overwrite, replace_where  those the predicate is not true for       all
merge                     those whose key no landing or deleting    updates (key matched) and
                          source row has                            inserts (key new), not deletes
========================  ========================================  ==============================

Only the columns the table checks need are read (plus the keys and partition columns that say
which rows stay). The Arrow side streams the current table batch by batch; the Spark side is one
lazy DataFrame (a union, with an anti join where rows are replaced), measured in one job.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lakeio.predicate import Predicate, columns_of, to_arrow

if TYPE_CHECKING:
    import pyarrow as pa

    from lakeio.engines import Engine
    from lakeio.requests import MergeRequest, ResolvedDataset, WriteRequest


@dataclass(frozen=True)
class TableAfter:
    """How one write changes its table, and the engine that reads the current table.

    Attributes:
        target: the dataset written.
        mode: the write mode, or ``"merge"``.
        engine: reads the current table (Arrow batches, or a Spark DataFrame for Spark data).
        replace_where: the rows an ``overwrite`` replaces, if it replaces only some.
        merge: the merge request, for a merge.
    """

    target: ResolvedDataset
    mode: str
    engine: Engine
    replace_where: Predicate | None = None
    merge: MergeRequest | None = None

    @classmethod
    def of(cls, request: WriteRequest | MergeRequest, engine: Engine) -> TableAfter:
        from lakeio.requests import MergeRequest

        if isinstance(request, MergeRequest):
            return cls(request.target, "merge", engine, merge=request)
        return cls(request.target, request.mode, engine, replace_where=request.replace_where)

    def columns(self, checked: tuple[str, ...]) -> tuple[str, ...]:
        """The incoming columns to keep: the table checks' and those that say which rows stay."""
        extra: tuple[str, ...] = ()
        if self.mode == "overwrite_partitions":
            extra = self.target.partition_by
        elif self.merge is not None:
            extra = self.merge.on + tuple(sorted(columns_of(self.merge.delete_when)))
        return tuple(dict.fromkeys(checked + extra))

    def _keeps_nothing(self) -> bool:
        return (self.mode in ("error", "overwrite") and self.replace_where is None) or \
            not self.engine.exists(self.target.location, self.target.format)

    # -- Arrow -------------------------------------------------------------------------------------

    def arrow_batches(self, incoming: pa.Table, columns: tuple[str, ...]) -> Iterator[pa.RecordBatch]:
        """The table after the write, as ``columns``: the current table's rows that stay (streamed,
        cast to the incoming types), then the incoming rows that land."""
        import pyarrow as pa

        landing = incoming
        replaced = self._replaced_rows(incoming)
        merge = self.merge
        matched: list[pa.Table] = []
        offered = affected = incoming
        if merge is not None:
            deleting = true_for(incoming, merge.delete_when)
            offered = incoming.filter(_negated(deleting))
            affected = (incoming if merge.when_matched == "update" else incoming.filter(deleting)).select(list(merge.on))
        if not self._keeps_nothing():
            from lakeio.requests import ScanPlan

            wanted = self.columns(columns)
            present = [c for c in wanted if c in self.engine.schema(ScanPlan(self.target, validate=False)).names]
            read = ScanPlan(self.target, columns=tuple(present), validate=False)
            _, batches = self.engine.read_batches(read, read.record("validate", self.engine.name, "table checks"))
            for batch in batches:
                current = _like(pa.Table.from_batches([batch]), incoming.select(list(wanted)))
                if replaced is not None:
                    current = current.filter(~(replaced & replaced.is_valid()))  # a null verdict keeps the row
                if merge is not None:
                    if (merge.when_matched == "update") != (merge.when_not_matched == "insert"):
                        matched.append(offered.select(list(merge.on)).join(current.select(list(merge.on)), list(merge.on),
                                                                          join_type="left semi"))
                    current = current.join(affected, list(merge.on), join_type="left anti")
                yield from current.select(list(columns)).to_batches()
        if merge is not None:
            landing = _landing(merge, offered, matched)
        yield from landing.select(list(columns)).to_batches()

    def offered_mask(self, incoming: pa.Table):
        """Where a merge's source rows are not marked for deleting (the rows it may write)."""
        assert self.merge is not None, "only a merge marks rows for deleting"
        return _negated(true_for(incoming, self.merge.delete_when))

    def _replaced_rows(self, incoming: pa.Table):
        """The Arrow expression of the current rows the write replaces, or None."""
        if self.mode == "overwrite_partitions":
            from lakeio.files import partitions_of

            return to_arrow(partitions_of(incoming, self.target.partition_by))
        return None if self.replace_where is None else to_arrow(self.replace_where)

    # -- Spark -------------------------------------------------------------------------------------

    def spark_frame(self, incoming: Any, columns: tuple[str, ...]) -> Any:
        """The table after the write as a lazy Spark DataFrame of ``columns``."""
        from lakeio.engines import SparkCapable
        from lakeio.requests import ScanPlan
        from lakeio.spark.validation import table_after

        current = None
        if not self._keeps_nothing():
            assert isinstance(self.engine, SparkCapable), "Spark data's table is read by the Spark engine"
            current = self.engine.read_dataframe(ScanPlan(self.target, validate=False))
        return table_after(self, current, incoming, columns)


def true_for(table: pa.Table, predicate: Predicate | None):
    """A boolean array: where ``predicate`` is true (false where it is false or null)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    if predicate is None:
        return pa.array([False] * table.num_rows, type=pa.bool_())
    marked = ds.dataset(table).to_table(columns={"m": to_arrow(predicate)})["m"]
    return pc.fill_null(marked, False)


def _negated(mask):
    import pyarrow.compute as pc

    return pc.invert(mask)


def _like(current: pa.Table, incoming: pa.Table) -> pa.Table:
    """The current table's columns as the incoming ones (its missing columns null), so keys join
    and the measures see one type per column."""
    import pyarrow as pa

    arrays = [current[name].cast(field.type) if name in current.column_names else pa.nulls(current.num_rows, field.type)
              for name, field in zip(incoming.column_names, incoming.schema)]
    return pa.table(arrays, names=incoming.column_names)


def _landing(merge: MergeRequest, offered, matched: list) -> pa.Table:
    """The source rows a merge writes: all offered rows when it updates and inserts, the matched
    ones when it only updates, the new ones when it only inserts."""
    import pyarrow as pa

    update, insert = merge.when_matched == "update", merge.when_not_matched == "insert"
    if update and insert:
        return offered
    if not update and not insert:
        return offered.slice(0, 0)
    keys = list(merge.on)
    found = pa.concat_tables(matched) if matched else offered.select(keys).slice(0, 0)
    return offered.join(found.group_by(keys).aggregate([]), keys, join_type="left semi" if update else "left anti")
