"""Arrow tables to pandas frames a few columns at a time, so the peak is about one frame, not two.

``table.to_pandas()`` converts every column in one call. Even with ``self_destruct``, the pages it
frees stay with Arrow's allocator (mimalloc by default) until the call returns, so the peak is the
table plus the whole frame. :func:`arrow_to_pandas` converts a column (or a run of small columns) at
a time, drops its Arrow buffers and hands the freed pages back to the operating system
(``MemoryPool.release_unused``) every ``_RELEASE_BYTES``: the peak is the table plus about one column.

Integer and float columns, most of a typical frame, do not even cost a column: their values are
copied chunk by chunk into one new NumPy array, each chunk freed once copied, as pyarrow converts
them (an integer column with nulls becomes float64, nulls become NaN). Every other column, the index
and the column labels are converted by pyarrow itself from the table and its pandas metadata, so the
frame is the one ``table.to_pandas()`` gives: dtypes, values, index, column labels and order,
``attrs``. Only the layout differs: pandas holds about one block per column, not one per dtype.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    import numpy
    import pandas
    import pyarrow as pa

# Arrow memory freed between two hand-backs to the operating system; also the most that columns
# converted by pyarrow in one call may take, so a run of small columns is one call, not many.
_RELEASE_BYTES = 64 << 20


def arrow_to_pandas(read: Callable[[], "pa.Table"]) -> "pandas.DataFrame":
    """The frame ``read().to_pandas()`` gives, converted a few columns at a time.

    Args:
        read: returns the table to convert. It is called here so that this function holds the only
            reference to the table and each column's memory is freed as soon as it is converted.

    Returns:
        The frame ``table.to_pandas()`` would give, with about one block per column.
    """
    import pandas as pd
    import pyarrow as pa

    table = read()
    releaser = _Releaser(pa.default_memory_pool())
    releaser.release()  # the read's scratch pages, before the first column adds its own
    index_columns = _stored_index_columns(table)
    shell = table.select(index_columns).to_pandas()  # the index, rebuilt by pyarrow from the metadata
    labels = table.slice(0, 0).to_pandas().columns  # the column labels, likewise (they need no rows)
    metadata_types = _metadata_numpy_types(table)
    table = table.drop_columns(index_columns)
    schema, arrays = table.schema, table.columns  # the list lets each column go on its own
    del table
    columns: list = []  # NumPy arrays of numbers, and Series of pyarrow's conversion
    while len(columns) < len(arrays):
        position = len(columns)
        dtype = _number_dtype(schema.field(position), arrays[position].null_count, metadata_types)
        if dtype is not None:
            chunks, arrays[position] = arrays[position].chunks, None
            columns.append(_copied(chunks, dtype, releaser))
            continue
        end = _run_end(schema, arrays, position, metadata_types)
        run = pa.Table.from_arrays(arrays[position:end], schema=pa.schema(
            [schema.field(i) for i in range(position, end)], metadata=schema.metadata))
        arrays[position:end] = [None] * (end - position)
        run_bytes = run.nbytes
        converted = run.to_pandas(self_destruct=True)
        del run
        for offset in range(end - position):
            series = converted.iloc[:, offset]
            series.index = shell.index  # one index object: the frame takes each column without reindexing
            columns.append(series)
        releaser.freed(run_bytes)
    frame = pd.DataFrame(dict(enumerate(columns)), index=shell.index, copy=False)
    frame.columns = labels  # positions as keys above: labels may repeat
    frame.attrs = shell.attrs
    return frame


class _Releaser:
    """Hands the pages Arrow's allocator keeps back to the operating system, once enough is freed."""

    def __init__(self, pool: "pa.MemoryPool"):
        self._pool, self._freed = pool, 0

    def freed(self, nbytes: int) -> None:
        self._freed += nbytes
        if self._freed >= _RELEASE_BYTES:
            self.release()

    def release(self) -> None:
        self._pool.release_unused()
        self._freed = 0


def _stored_index_columns(table: "pa.Table") -> list[str]:
    """The columns of ``table`` that its pandas metadata says hold the frame's index."""
    metadata = table.schema.pandas_metadata
    if metadata is None:
        return []
    names = table.column_names
    return [name for name in metadata["index_columns"] if isinstance(name, str) and names.count(name) == 1]


def _metadata_numpy_types(table: "pa.Table") -> dict[str, str]:
    """The dtype the pandas metadata records for each column, by Arrow field name."""
    metadata = table.schema.pandas_metadata or {}
    return {column.get("field_name", column["name"]): column["numpy_type"] for column in metadata.get("columns", [])}


def _number_dtype(field: "pa.Field", null_count: int, metadata_types: dict[str, str]) -> Any:
    """The NumPy dtype pyarrow gives an integer or float column, or None for any other column and
    for one whose pandas metadata asks for something else (say, pandas' nullable ``Int64``)."""
    import numpy as np
    import pyarrow as pa

    if not (pa.types.is_integer(field.type) or pa.types.is_floating(field.type)):
        return None
    dtype = np.dtype(np.float64 if pa.types.is_integer(field.type) and null_count else field.type.to_pandas_dtype())
    return dtype if metadata_types.get(field.name, dtype.name) == dtype.name else None


def _run_end(schema: "pa.Schema", arrays: list, start: int, metadata_types: dict[str, str]) -> int:
    """Where the run of columns pyarrow converts in one call, from ``start``, ends: it takes the
    column at ``start``, then the columns after it that are not numbers, while they take less
    than ``_RELEASE_BYTES``."""
    end, run_bytes = start + 1, arrays[start].nbytes
    while end < len(arrays):
        array = arrays[end]
        if (_number_dtype(schema.field(end), array.null_count, metadata_types) is not None
                or run_bytes + array.nbytes > _RELEASE_BYTES):
            break
        end, run_bytes = end + 1, run_bytes + array.nbytes
    return end


def _copied(chunks: list, dtype: Any, releaser: _Releaser) -> "numpy.ndarray":
    """The values of ``chunks`` (integer or float arrays) in one new array of ``dtype``.

    Each chunk's entry in ``chunks`` is cleared as it is copied, so the chunk is freed and the new
    array grows as the chunks go.
    """
    import numpy as np

    values = np.empty(sum(len(chunk) for chunk in chunks), dtype)
    start = 0
    for position in range(len(chunks)):
        chunk, chunks[position] = chunks[position], None
        values[start:start + len(chunk)] = chunk.to_numpy(zero_copy_only=False)  # nulls: NaN
        start += len(chunk)
        chunk_bytes = chunk.nbytes
        del chunk
        releaser.freed(chunk_bytes)
    return values
