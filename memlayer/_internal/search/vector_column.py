"""`VectorColumn`: one vector per index row (or none), kept in one growing float32 matrix.

A user's index holds two: the vectors of the memories' texts, and those of the inputs they came
from. Rows are appended, never reordered; a row without a vector (no embedder when it was written,
another dimension, no input) is flagged and never scored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from .ann import NearestRows

__all__ = ["VectorColumn", "from_blobs"]


def from_blobs(blobs: Sequence[bytes | None]) -> list[npt.NDArray[np.float32] | None]:
    """The stored little-endian float32 bytes as vectors; one buffer when all rows have one of one size."""
    if blobs and all(b is not None for b in blobs) and len({len(b) for b in blobs if b is not None}) == 1:
        # One buffer for the whole user: a row-by-row copy costs more than the query that read them.
        matrix = np.frombuffer(b"".join(b for b in blobs if b is not None), dtype="<f4").reshape(len(blobs), -1)
        return list(matrix)
    return [None if b is None else np.frombuffer(b, dtype="<f4") for b in blobs]


class VectorColumn:
    """The vectors of rows 0..n-1; the dimension is the first vector's, and rows of another have none."""

    def __init__(self) -> None:
        self.matrix: npt.NDArray[np.float32] = np.zeros((0, 0), dtype=np.float32)
        self.has: list[bool] = []
        self.dim = 0
        self.nearest: NearestRows | None = None  # a large column's approximate index (memlayer._internal.search.ann)

    def __len__(self) -> int:
        return len(self.has)

    def extend(self, vectors: Sequence[npt.NDArray[np.float32] | None]) -> None:
        dims = {v.shape[0] for v in vectors if v is not None}
        if dims and not self.dim:
            self.dim = dims.pop()
        need = len(self.has) + len(vectors)
        if self.dim and not self.has and all(v is not None and v.shape[0] == self.dim for v in vectors):
            self.matrix = np.array(vectors, dtype=np.float32).reshape(len(vectors), self.dim)
            self.has = [True] * len(vectors)
            return
        if self.dim and self.matrix.shape[0] < need:
            grown = np.zeros((max(need, 2 * self.matrix.shape[0], 64), self.dim), dtype=np.float32)
            if self.matrix.shape[1] == self.dim:
                grown[: self.matrix.shape[0]] = self.matrix
            self.matrix = grown
        for vector in vectors:
            row = len(self.has)
            ok = vector is not None and vector.shape[0] == self.dim
            if ok:
                assert vector is not None
                self.matrix[row] = vector
            self.has.append(ok)

    def similarity(self, query: npt.NDArray[np.float32], rows: int) -> npt.NDArray[np.float32] | None:
        """Every row's dot product with ``query`` (one pass over the contiguous matrix), or None when
        the dimensions differ or no row has a vector."""
        if not self.dim or self.dim != query.shape[0]:
            return None
        return self.matrix[:rows] @ query
