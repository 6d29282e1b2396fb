"""Reader and writer for the IDX format of MNIST and Fashion-MNIST (gzip-compressed or raw).

Layout: two zero bytes, a type code, the number of dimensions ``d``, then ``d`` big-endian uint32 sizes,
then the payload in C order (big-endian for multi-byte types).
"""
from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..errors import DatasetError
from ..fileio import atomic_path

# IDX type code -> big-endian numpy dtype.
_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dt.newbyteorder(">") if dt.itemsize > 1 else dt: code for code, dt in _TYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"


def _open(path: Path) -> BinaryIO:
    with open(path, "rb") as fh:
        head = fh.read(2)
    if head == _GZIP_MAGIC:
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def _read_exact(fh: BinaryIO, n: int, path: Path, what: str) -> bytes:
    data = fh.read(n)
    if len(data) != n:
        raise DatasetError(f"{path}: truncated IDX file (the {what} ends after {len(data)} of {n} bytes)")
    return data


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (gzip or raw, detected from the content) into a writable native-endian array.

    Checks the magic number, the dimensions and that the payload is exactly as long as they say; a
    truncated gzip stream, a short payload or trailing bytes raise :class:`DatasetError` naming the file.
    """
    path = Path(path)
    try:
        with _open(path) as fh:
            magic = _read_exact(fh, 4, path, "header")
            if magic[0] != 0 or magic[1] != 0 or magic[2] not in _TYPES or magic[3] == 0:
                raise DatasetError(f"{path}: not an IDX file (bad magic number 0x{magic.hex()})")
            dtype, ndim = _TYPES[magic[2]], magic[3]
            dims = struct.unpack(f">{ndim}I", _read_exact(fh, 4 * ndim, path, "header"))
            out = np.empty(dims, dtype=dtype)
            # Read straight into the result: no intermediate bytes object, so peak memory is one copy.
            view = memoryview(out.reshape(-1).view(np.uint8))
            got = 0
            while got < out.nbytes:
                n = fh.readinto(view[got:])  # type: ignore[attr-defined]
                if not n:
                    break
                got += n
            if got != out.nbytes:
                raise DatasetError(f"{path}: truncated IDX file (header says {'x'.join(map(str, dims))}, "
                                   f"payload has {got} of {out.nbytes} bytes)")
            if fh.read(1):
                raise DatasetError(f"{path}: IDX payload longer than its header says ({'x'.join(map(str, dims))})")
    except DatasetError:
        raise
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DatasetError(f"{path}: truncated or corrupt gzip data ({exc})") from exc
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if dtype.itemsize > 1:
        out = out.astype(dtype.newbyteorder("="))
    return out


def write_idx(path: str | Path, array: np.ndarray, compress: bool | None = None) -> None:
    """Write ``array`` as an IDX file, atomically; gzip-compressed when ``compress`` (default: name ends in .gz)."""
    path = Path(path)
    arr = np.asarray(array)
    dtype = arr.dtype.newbyteorder(">") if arr.dtype.itemsize > 1 else arr.dtype
    if dtype not in _CODES:
        raise DatasetError(f"{path}: IDX cannot store dtype {arr.dtype}")
    header = bytes([0, 0, _CODES[dtype], arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    payload = np.ascontiguousarray(arr, dtype=dtype).tobytes()
    if compress is None:
        compress = path.suffix == ".gz"
    with atomic_path(path) as tmp:
        if compress:
            with gzip.open(tmp, "wb") as fh:
                fh.write(header + payload)
        else:
            tmp.write_bytes(header + payload)
