"""Image decoding (Pillow) and resizing of uint8 ``N×C×H×W`` arrays."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ..errors import DatasetError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
# Modes that carry colour; everything else (L, LA, 1, I, I;16, F) is read as grayscale.
_COLOUR_MODES = {"RGB", "RGBA", "RGBX", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV"}


def normalize_size(image_size: int | tuple[int, int] | list[int] | None) -> tuple[int, int] | None:
    """``image_size`` as ``(height, width)``; an int means a square."""
    if image_size is None:
        return None
    if isinstance(image_size, (int, np.integer)):
        size = (int(image_size), int(image_size))
    else:
        try:
            h, w = image_size
            size = (int(h), int(w))
        except (TypeError, ValueError):
            raise DatasetError(f"image size must be an int or (height, width), got {image_size!r}") from None
    if min(size) < 1:
        raise DatasetError(f"image size must be positive, got {image_size!r}")
    return size


def is_colour_mode(mode: str) -> bool:
    """Whether a Pillow mode holds colour (so the dataset needs 3 channels)."""
    return mode in _COLOUR_MODES


def _to_mode(img, channels: int):
    """Pillow image → ``L`` or ``RGB``; 16/32-bit grayscale is scaled down, not clipped."""
    from PIL import Image

    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        img = Image.fromarray(np.clip(np.rint(arr * (255.0 / top)), 0, 255).astype(np.uint8), "L")
    if channels == 3:
        return img.convert("RGB") if img.mode != "RGB" else img
    return img.convert("L") if img.mode != "L" else img


def decode_image(data: bytes, channels: int, size: tuple[int, int] | None, label: str) -> np.ndarray:
    """Decode encoded image bytes to a uint8 ``C×H×W`` array, resized to ``size`` = (H, W) if given."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            img = _to_mode(img, channels)
            if size is not None and (img.height, img.width) != size:
                img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            arr = np.asarray(img, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DatasetError(f"{label}: unreadable image ({exc})") from exc
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def probe_image(path: Path, label: str) -> tuple[int, int, str]:
    """``(height, width, mode)`` from the header only (fast: no pixel decoding)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return img.height, img.width, img.mode
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DatasetError(f"{label}: unreadable image ({exc})") from exc


def resize_images(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize every image of a uint8 ``N×C×H×W`` array to ``size`` = (H, W) with Pillow's bilinear filter
    (which widens its support when shrinking, so downscaling averages like an area filter)."""
    from PIL import Image

    n, c, h, w = images.shape
    if (h, w) == tuple(size):
        return images
    out = np.empty((n, c, size[0], size[1]), dtype=np.uint8)
    for i in range(n):
        if c == 1:
            img = Image.fromarray(np.ascontiguousarray(images[i, 0]), "L")
            out[i, 0] = np.asarray(img.resize((size[1], size[0]), Image.Resampling.BILINEAR))
        else:
            # Resize each channel on its own so any channel count works (Pillow has no 2- or 4-plane L mode).
            for ch in range(c):
                img = Image.fromarray(np.ascontiguousarray(images[i, ch]), "L")
                out[i, ch] = np.asarray(img.resize((size[1], size[0]), Image.Resampling.BILINEAR))
    return out
