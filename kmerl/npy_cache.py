"""Memory-mappable copies of Parquet columns: what the random-access readers read.

A training loader reads single rows in random order; decoding a Parquet row group
per row would cost milliseconds, a memory-mapped ``.npy`` file costs a memory copy.
The copy is made once per file and column, streaming one row group at a time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from kmerl.atomic import atomic_write


def dense(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A fixed-shape tensor, fixed-size list or primitive column as one (rows, ...) array."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if isinstance(array.type, pa.FixedShapeTensorType):
        return array.to_numpy_ndarray()
    if isinstance(array.type, pa.FixedSizeListType):
        values = array.flatten().to_numpy(zero_copy_only=False)
        return values.reshape(len(array), array.type.list_size)
    return array.to_numpy(zero_copy_only=False)


def write_npy(parquet: pq.ParquetFile, column: str, path: Path) -> None:
    """Copy one column of a Parquet file into an ``.npy`` file, atomically."""
    rows = parquet.metadata.num_rows
    first = dense(parquet.read_row_group(0, columns=[column]).column(0)) if rows else np.empty((0,))
    header = {
        "descr": np.lib.format.dtype_to_descr(first.dtype),
        "fortran_order": False,
        "shape": (rows, *first.shape[1:]),
    }
    with atomic_write(path) as handle:
        np.lib.format.write_array_header_2_0(handle, header)
        for batch in parquet.iter_batches(columns=[column]):
            handle.write(np.ascontiguousarray(dense(batch.column(0)), dtype=first.dtype).tobytes())


def mapped(parquet: pq.ParquetFile, column: str, path: Path) -> np.ndarray:
    """The column memory-mapped, copying it to ``path`` first if it is not there yet."""
    if not path.exists():
        write_npy(parquet, column, path)
    return np.load(path, mmap_mode="r")
