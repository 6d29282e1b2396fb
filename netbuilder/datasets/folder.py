"""``folder:PATH`` datasets: any folder of PNG/JPEG images, one subfolder per class (labelled) or flat.

The decoded uint8 array is cached next to the data (``PATH/.netbuilder-cache/<key>.npy`` plus a ``.json``
with labels, class names and the fingerprint), keyed by the file list, sizes, mtimes and the image size,
so a second load neither decodes nor hashes. The cache is written through a memory map whose pages are
flushed and released as decoding goes, so a set larger than memory never has to fit in it, and it is read
back memory-mapped when it is large: training then streams it (see :mod:`netbuilder.train.batches`).

Without an image size, images larger than :data:`DEFAULT_MAX_SIDE` (photos) are resized by default (see
:func:`default_size`) and a line on stderr says so.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from ..fileio import atomic_path, write_json
from .base import Dataset
from .checksum import fingerprint, resized_fingerprint
from .images import IMAGE_EXTENSIONS, decode_image, is_colour_mode, normalize_size, probe_image
from .kinds import register_dataset
from .paths import cache_dir_for, located_path

CACHE_DIRNAME = ".netbuilder-cache"
CACHE_VERSION = 2  # 2: records the default size of large images
DEFAULT_MAX_SIDE = 64
"""Without ``--image-size``, images with a longer side are resized so that their longest side is this."""
# Arrays above this many bytes are memory-mapped (and streamed) rather than read into memory;
# None: 512 MiB, or an eighth of RAM if that is less.
MMAP_THRESHOLD_BYTES: int | None = None
# Decoded bytes between flushes (and page releases) of the cache being written.
_FLUSH_BYTES = 128 << 20


def _mmap_threshold() -> int:
    if MMAP_THRESHOLD_BYTES is not None:
        return MMAP_THRESHOLD_BYTES
    try:
        return min(512 << 20, os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 8)
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 512 << 20


def _natural_key(rel: str) -> list:
    # "img2.png" before "img10.png"
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", rel)]


def _is_image(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def scan(folder: Path) -> tuple[list[str], list[str] | None, list[int] | None]:
    """Image files (relative POSIX paths) in load order, class names and labels (``None`` when flat).

    Hidden files and folders and the cache folder are skipped. A subfolder's images (at any depth) belong
    to the class named after the top-level subfolder.
    """
    top: list[str] = []
    per_class: dict[str, list[str]] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d != CACHE_DIRNAME]
        rel_dir = Path(dirpath).relative_to(folder)
        images = [f for f in filenames if _is_image(f)]
        if not images:
            continue
        if rel_dir == Path("."):
            top.extend(images)
        else:
            cls = rel_dir.parts[0]
            per_class.setdefault(cls, []).extend((rel_dir / f).as_posix() for f in images)
    if not top and not per_class:
        raise DatasetError(f"folder:{folder}: no images found (looked for {' '.join(IMAGE_EXTENSIONS)})")
    if per_class and top:
        raise DatasetError(f"folder:{folder}: images both at the top level (e.g. {sorted(top)[0]}) and in class "
                           f"subfolders ({', '.join(sorted(per_class)[:3])}); use one subfolder per class, or a "
                           f"flat folder without labels")
    if not per_class:
        return sorted(top, key=_natural_key), None, None
    class_names = sorted(per_class)
    files: list[str] = []
    labels: list[int] = []
    for k, cls in enumerate(class_names):
        members = sorted(per_class[cls], key=_natural_key)
        files.extend(members)
        labels.extend([k] * len(members))
    return files, class_names, labels


def _cache_key(folder: Path, files: list[str], size: tuple[int, int] | None) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([CACHE_VERSION, list(size) if size else None]).encode())
    for rel in files:
        st = (folder / rel).stat()
        h.update(f"\0{rel}\0{st.st_size}\0{st.st_mtime_ns}".encode())
    return h.hexdigest()[:24]


def _open_array(path: Path, shape: tuple[int, ...]) -> np.ndarray | None:
    """The cached array (memory-mapped when large), or None if it is missing or does not match."""
    try:
        arr = np.load(path, mmap_mode="r")
    except (OSError, ValueError):
        return None
    if arr.shape != tuple(shape) or arr.dtype != np.uint8:
        return None
    if arr.nbytes > _mmap_threshold():
        return arr
    return np.array(arr)  # small: read it in, so the file is not held open


def _load_cached(cache: Path, key: str) -> dict | None:
    meta_path = cache / f"{key}.json"
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if meta.get("version") != CACHE_VERSION:
        return None
    images = _open_array(cache / f"{key}.npy", meta["shape"])
    if images is None:
        return None
    meta["images"] = images
    return meta


def _prune(cache: Path, key: str, image_size: list[int] | None) -> None:
    """Delete cache entries for the same image size but an older state of the files (they cannot be hit
    again, and for large folders each one is as big as the data)."""
    for meta_path in cache.glob("*.json"):
        if meta_path.stem == key:
            continue
        try:
            stale = json.loads(meta_path.read_text(encoding="utf-8")).get("image_size") == image_size
        except (OSError, ValueError):
            stale = False
        if stale:
            (cache / f"{meta_path.stem}.npy").unlink(missing_ok=True)
            meta_path.unlink(missing_ok=True)


def default_size(first: tuple[int, int], mixed: bool, largest: int) -> tuple[int, int] | None:
    """The ``(H, W)`` that images are resized to without ``--image-size``, or None to keep them as they are.

    Images no larger than :data:`DEFAULT_MAX_SIDE` are kept. Larger ones (photos) get a longest side of
    DEFAULT_MAX_SIDE: with the aspect ratio of ``first`` when all share its size, else square.
    """
    if largest <= DEFAULT_MAX_SIDE:
        return None
    if mixed:
        return DEFAULT_MAX_SIDE, DEFAULT_MAX_SIDE
    scale = DEFAULT_MAX_SIDE / max(first)
    return max(1, round(first[0] * scale)), max(1, round(first[1] * scale))


def _probe(folder: Path, files: list[str],
           size: tuple[int, int] | None) -> tuple[tuple[int, int, int], tuple[int, int] | None]:
    """``(C, H, W)`` of the result, from the image headers, and the size to resize to (``size``, else the
    default size of large images); mixed sizes of small images need ``size``."""
    first: tuple[int, int, str] | None = None
    other: tuple[int, int, str] | None = None
    colour = False
    largest = 0
    for rel in files:
        h, w, mode = probe_image(folder / rel, f"folder:{folder}: {rel}")
        colour = colour or is_colour_mode(mode)
        largest = max(largest, h, w)
        if first is None:
            first = (h, w, rel)
        elif other is None and (h, w) != first[:2]:
            other = (h, w, rel)
    assert first is not None
    if size is None:
        size = default_size(first[:2], other is not None, largest)
        if size is None and other is not None:
            raise DatasetError(f"folder:{folder}: images have different sizes ({first[1]}x{first[0]} in "
                               f"{first[2]}, {other[1]}x{other[0]} in {other[2]}); pass --image-size")
    h, w = size if size is not None else first[:2]
    return ((3 if colour else 1), h, w), size


def _decode_into(out: np.ndarray, folder: Path, files: list[str], size: tuple[int, int] | None,
                 progress: bool) -> list[tuple[str, str]]:
    """Decode every file into ``out`` (which may be a memmap); return ``(name, sha256)`` entries."""
    from tqdm import tqdm

    from ..train.batches import release_pages

    channels = out.shape[1]
    entries = []
    flush_every = max(1, _FLUSH_BYTES // max(1, int(np.prod(out.shape[1:]))))
    for i, rel in enumerate(tqdm(files, desc=f"decoding {folder.name}", unit="img", leave=False,
                                 disable=not progress or len(files) < 500)):
        label = f"folder:{folder}: {rel}"
        try:
            data = (folder / rel).read_bytes()
        except OSError as exc:
            raise DatasetError(f"{label}: cannot read ({exc.strerror or exc})") from exc
        arr = decode_image(data, channels, size, label)
        if arr.shape != out.shape[1:]:
            raise DatasetError(f"folder:{folder}: images have different sizes ({out.shape[3]}x{out.shape[2]} "
                               f"expected, {arr.shape[2]}x{arr.shape[1]} in {rel}); pass --image-size")
        out[i] = arr
        entries.append((rel, hashlib.sha256(data).hexdigest()))
        if isinstance(out, np.memmap) and (i + 1) % flush_every == 0:
            # Written pages count as this process's memory until flushed and released.
            out.flush()
            release_pages(out)
    return entries


def load_folder(path: str | os.PathLike, split: str = "all",
                image_size: int | tuple[int, int] | None = None, progress: bool = True) -> Dataset:
    """Load a folder of images as a :class:`Dataset` named ``folder:<absolute path>``."""
    folder, name = located_path("folder", path, split, folder=True)
    size = normalize_size(image_size)
    files, class_names, labels = scan(folder)
    key = _cache_key(folder, files, size)
    cache = cache_dir_for(folder, CACHE_DIRNAME)
    meta = _load_cached(cache, key) if cache is not None else None
    if meta is None:
        image_shape, resize = _probe(folder, files, size)
        shape = (len(files),) + image_shape
        default = list(resize) if resize and not size else None
        images, entries = None, None
        if cache is not None:
            try:
                with atomic_path(cache / f"{key}.npy", suffix=".npy") as tmp:
                    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
                    entries = _decode_into(out, folder, files, resize, progress)
                    out.flush()
                    del out
                meta = {"version": CACHE_VERSION, "image_size": list(size) if size else None,
                        "default_size": default, "shape": list(shape), "fingerprint": fingerprint(entries),
                        "files": files}
                write_json(cache / f"{key}.json", meta)
                _prune(cache, key, meta["image_size"])
                images = _open_array(cache / f"{key}.npy", shape)
            except OSError:
                # Disk full or the cache folder vanished: fall back to decoding into memory.
                images = None
        if images is None:
            images = np.empty(shape, dtype=np.uint8)
            entries = _decode_into(images, folder, files, resize, progress)
        meta = {"images": images, "fingerprint": fingerprint(entries or []), "default_size": default}
    if size is None and meta.get("default_size"):
        size = (int(meta["default_size"][0]), int(meta["default_size"][1]))
        print(f"{name}: images larger than {DEFAULT_MAX_SIDE} px resized to height {size[0]}, width {size[1]} "
              f"(the default; pass --image-size to choose)", file=sys.stderr)
    fp = meta["fingerprint"] if size is None else resized_fingerprint(meta["fingerprint"], size)
    return Dataset(name=name, images=meta["images"],
                   labels=None if labels is None else np.asarray(labels, dtype=np.int64),
                   class_names=class_names, fingerprint=fp, source=str(folder), split=split,
                   files=files)


@register_dataset("folder:", placeholder="PATH", what="a folder", example="folder:./images",
                  description="PNG/JPEG images; one subfolder per class, or flat without labels",
                  options=("image_size",))
def load_folder_kind(location: str, root: Path, split: str, download_ok: bool, progress: bool, *,
                     image_size: int | tuple[int, int] | None = None) -> Dataset:
    """``folder:PATH``: PATH is relative to the working directory (not the data root); nothing is downloaded."""
    return load_folder(location, split=split, image_size=image_size, progress=progress)
