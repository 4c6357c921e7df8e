"""Arrow tables to pandas frames a few columns at a time, so the peak is about one frame, not two.

``table.to_pandas()`` converts every column in one call. Even with ``self_destruct``, the pages it
frees stay with Arrow's allocator (mimalloc by default) until the call returns, so the peak is the
table plus the whole frame. :func:`arrow_to_pandas` converts a column, or a run of columns, at a
time, drops its Arrow buffers and hands the freed pages back to the operating system
(``MemoryPool.release_unused``) every ``_RELEASE_BYTES``: the peak is the table plus about a column.

Integer and float columns, most of a typical frame, do not even cost a column: their values are
copied chunk by chunk into the frame's block for their dtype, each chunk freed once copied, as
pyarrow converts them (an integer column with nulls becomes float64, nulls become NaN). Every other
column, the index and the column labels are converted by pyarrow itself from the table and its
pandas metadata. So the frame is the one ``table.to_pandas()`` gives: dtypes, values, index, column
labels and order, ``attrs``, and the same layout, one block per dtype (other than numbers, one per
dtype per run of at most ``_RELEASE_BYTES``). The layout matters: a frame of one block per column
copies itself again to consolidate in ``copy()``, ``assign()``, ``describe()`` or arithmetic.

pandas has no public way to put blocks together; like pyarrow, this builds the frame with its
pseudo-public ``pandas.core.internals`` API (pandas 2, which lakeio requires).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy
    import pandas
    import pyarrow as pa

# Arrow memory freed between two hand-backs to the operating system; also the most that the columns
# pyarrow converts in one call may take, so small columns are one call, not one each.
_RELEASE_BYTES = 64 << 20


def arrow_to_pandas(read: Callable[[], pa.Table]) -> pandas.DataFrame:
    """The frame ``read().to_pandas()`` gives, converted a few columns at a time.

    Args:
        read: returns the table to convert. It is called here so that this function holds the only
            reference to the table and each column's memory is freed as soon as it is converted.

    Returns:
        The frame ``table.to_pandas()`` would give.
    """
    from concurrent.futures import ThreadPoolExecutor

    import pyarrow as pa

    releaser = _Releaser(pa.default_memory_pool())
    # The pages an earlier frame freed to Arrow's allocator go back first: mimalloc keeps them with
    # the threads that allocated them, and the read's threads would map fresh ones beside them (a
    # second to_pandas in one process peaked a third higher than the first).
    releaser.release()
    table = read()
    index_columns = _stored_index_columns(table)
    shell = table.select(index_columns).to_pandas()  # the index, rebuilt by pyarrow from the metadata
    labels = table.slice(0, 0).to_pandas().columns  # the column labels, likewise (they need no rows)
    metadata_types = _metadata_numpy_types(table)
    table = table.drop_columns(index_columns)
    schema, arrays, rows = table.schema, table.columns, table.num_rows  # a list: each column can go alone
    del table
    dtypes = [_number_dtype(field, array.null_count, metadata_types) for field, array in zip(schema, arrays)]
    blocks, copies = _number_blocks(arrays, dtypes, rows)
    releaser.release()  # the read's scratch pages, once the number blocks have taken what the pool kept
    with ThreadPoolExecutor(pa.cpu_count()) as threads:
        # The numbers are copied on the pool (NumPy copies without holding the GIL) while pyarrow
        # converts the other columns on this thread, as its own to_pandas converts all at once.
        copying = [threads.submit(_copy_chunks, chunks, row, releaser) for chunks, row in copies]
        blocks += _converted_blocks(schema, arrays, [position for position, dtype in enumerate(dtypes) if dtype is None],
                                    releaser)
        for copy in copying:
            copy.result()  # raise what failed
    return _frame(blocks, shell.index, labels, shell.attrs)


def _number_blocks(arrays: list, dtypes: list, rows: int) -> tuple[list, list[tuple[list, Any]]]:
    """One block per dtype of the number columns (those with a dtype in ``dtypes``), as (values,
    positions) pairs, and the copies that fill them (a column's chunks, its row of a block; see
    :func:`_copy_chunks`): each column's entry in ``arrays`` is cleared."""
    import numpy as np
    import pyarrow as pa

    blocks: list = []
    copies: list[tuple[list, Any]] = []  # (a column's chunks, its row of the block)
    for dtype in dict.fromkeys(dtype for dtype in dtypes if dtype is not None):  # each once, in order
        positions = [position for position, other in enumerate(dtypes) if other is not None and other == dtype]
        # From Arrow's pool, as pyarrow allocates its own blocks: pages a previous frame freed are
        # reused, where NumPy's allocator maps (and faults in) fresh ones for every frame.
        buffer = pa.allocate_buffer(len(positions) * rows * dtype.itemsize)
        values = np.frombuffer(buffer, dtype).reshape(len(positions), rows)
        for row, position in zip(values, positions):
            chunks, arrays[position] = arrays[position].chunks, None
            copies.append((chunks, row))
        blocks.append((values, positions))
    return blocks, copies


def _converted_blocks(schema: pa.Schema, arrays: list, positions: list[int], releaser: _Releaser) -> list:
    """The blocks pyarrow makes of the columns at ``positions``, converted in runs, as (values,
    positions) pairs; each column's entry in ``arrays`` is cleared as its run is converted."""
    import pyarrow as pa

    blocks = []
    for run in _runs(positions, arrays):
        run_table = pa.Table.from_arrays([arrays[position] for position in run], schema=pa.schema(
            [schema.field(position) for position in run], metadata=schema.metadata))
        for position in run:
            arrays[position] = None
        run_bytes = run_table.nbytes
        converted = run_table.to_pandas(self_destruct=True)
        del run_table
        blocks += [(block.values, [run[offset] for offset in block.mgr_locs.as_array])
                   for block in converted._mgr.blocks]
        releaser.freed(run_bytes)
    return blocks


class _Releaser:
    """Hands the pages Arrow's allocator keeps back to the operating system, once enough is freed."""

    def __init__(self, pool: pa.MemoryPool):
        import threading

        self._pool, self._freed, self._lock = pool, 0, threading.Lock()

    def freed(self, nbytes: int) -> None:
        """Counts ``nbytes`` more freed (from any thread) and releases every ``_RELEASE_BYTES``."""
        with self._lock:
            self._freed += nbytes
            if self._freed < _RELEASE_BYTES:
                return
            self._freed = 0
        self.release()

    def release(self) -> None:
        self._pool.release_unused()


def _stored_index_columns(table: pa.Table) -> list[str]:
    """The columns of ``table`` that its pandas metadata says hold the frame's index."""
    metadata = table.schema.pandas_metadata
    if metadata is None:
        return []
    names = table.column_names
    return [name for name in metadata["index_columns"] if isinstance(name, str) and names.count(name) == 1]


def _metadata_numpy_types(table: pa.Table) -> dict[str, str]:
    """The dtype the pandas metadata records for each column, by Arrow field name."""
    metadata = table.schema.pandas_metadata or {}
    return {column.get("field_name", column["name"]): column["numpy_type"] for column in metadata.get("columns", [])}


def _number_dtype(field: pa.Field, null_count: int, metadata_types: dict[str, str]) -> Any:
    """The NumPy dtype pyarrow gives an integer or float column, or None for any other column and
    for one whose pandas metadata asks for something else (say, pandas' nullable ``Int64``)."""
    import numpy as np
    import pyarrow as pa

    if not (pa.types.is_integer(field.type) or pa.types.is_floating(field.type)):
        return None
    dtype = np.dtype(np.float64 if pa.types.is_integer(field.type) and null_count else field.type.to_pandas_dtype())
    return dtype if metadata_types.get(field.name, dtype.name) == dtype.name else None


def _runs(positions: list[int], arrays: list) -> list[list[int]]:
    """``positions`` (of columns in ``arrays``) in order, cut into runs for one pyarrow call each: a
    run takes columns while they take less than ``_RELEASE_BYTES`` together, and at least one."""
    runs: list[list[int]] = []
    run_bytes = 0
    for position in positions:
        column_bytes = arrays[position].nbytes
        if not runs or run_bytes + column_bytes > _RELEASE_BYTES:
            runs.append([])
            run_bytes = 0
        runs[-1].append(position)
        run_bytes += column_bytes
    return runs


def _copy_chunks(chunks: list, out: numpy.ndarray, releaser: _Releaser) -> None:
    """Copies the values of ``chunks`` (integer or float arrays) into ``out``, in order.

    Each chunk's entry in ``chunks`` is cleared as it is copied, so the chunk is freed and ``out``
    fills as the chunks go.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    start = 0
    for position in range(len(chunks)):
        chunk, chunks[position] = chunks[position], None
        if chunk.null_count:  # nulls become NaN, as pyarrow makes them, in Arrow's pool (NumPy's maps fresh pages)
            floats = chunk.cast(pa.float64(), safe=False) if pa.types.is_integer(chunk.type) else chunk
            out[start:start + len(chunk)] = pc.fill_null(floats, float("nan")).to_numpy()
        else:
            out[start:start + len(chunk)] = chunk.to_numpy()
        start += len(chunk)
        chunk_bytes = chunk.nbytes
        del chunk
        releaser.freed(chunk_bytes)


def _frame(blocks: list, index: pandas.Index, labels: pandas.Index, attrs: dict) -> pandas.DataFrame:
    """The frame of ``blocks`` ((values, positions) pairs), as pyarrow builds its own."""
    import pandas as pd
    from pandas.core.internals import BlockManager
    from pandas.core.internals.api import make_block

    manager = BlockManager([make_block(values, placement=positions, ndim=2) for values, positions in blocks],
                           [labels, index])
    frame = pd.DataFrame._from_mgr(manager, manager.axes)
    frame.attrs = attrs
    return frame
