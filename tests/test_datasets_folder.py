"""``folder:PATH`` datasets built from generated PNG/JPEG files."""
from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from netbuilder.datasets import folder as folder_mod
from netbuilder.datasets import load_dataset
from netbuilder.errors import DatasetError


def _save(path, array, fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = "L" if array.ndim == 2 else "RGB"
    Image.fromarray(array.astype(np.uint8), mode).save(path, format=fmt)


@pytest.fixture()
def two_class(tmp_path):
    """``Negative/`` with 3 dark 12×10 images and ``Positive/`` with 2 bright ones (plus noise to ignore)."""
    root = tmp_path / "cracks"
    for i in range(3):
        _save(root / "Negative" / f"n{i}.png", np.full((12, 10), 10 + i))
    for i in (2, 10):  # natural order: p2 before p10
        _save(root / "Positive" / f"p{i}.png", np.full((12, 10), 200 + i))
    (root / "Positive" / "notes.txt").write_text("not an image")
    (root / ".hidden").mkdir()
    _save(root / ".hidden" / "x.png", np.zeros((3, 3)))
    (root / "Empty").mkdir()
    return root


def test_labelled_folder(two_class):
    ds = load_dataset(f"folder:{two_class}")
    assert ds.name == f"folder:{two_class.resolve()}" and ds.source == str(two_class.resolve())
    assert ds.images.shape == (5, 1, 12, 10) and ds.images.dtype == np.uint8
    assert ds.class_names == ["Negative", "Positive"] and ds.n_classes == 2
    assert ds.labels.dtype == np.int64 and ds.labels.tolist() == [0, 0, 0, 1, 1]
    assert ds.images[:, 0, 5, 5].tolist() == [10, 11, 12, 202, 210]
    assert ds.files == ["Negative/n0.png", "Negative/n1.png", "Negative/n2.png", "Positive/p2.png",
                        "Positive/p10.png"]
    assert len(ds.fingerprint) == 64


def test_flat_folder_has_no_labels(two_class):
    ds = load_dataset(f"FOLDER:{two_class / 'Positive'}")
    assert ds.images.shape == (2, 1, 12, 10)
    assert ds.labels is None and ds.class_names is None and ds.n_classes is None


def test_rgb_gives_three_channels(tmp_path):
    rgb = np.zeros((6, 8, 3), dtype=np.uint8)
    rgb[..., 0], rgb[..., 2] = 255, 40
    _save(tmp_path / "a.png", rgb)
    _save(tmp_path / "b.png", np.full((6, 8), 77))  # grayscale joins as R=G=B
    ds = load_dataset(f"folder:{tmp_path}")
    assert ds.images.shape == (2, 3, 6, 8)
    assert ds.images[0, :, 0, 0].tolist() == [255, 0, 40]
    assert ds.images[1, :, 0, 0].tolist() == [77, 77, 77]


def test_jpeg_is_read(tmp_path):
    _save(tmp_path / "x.JPG", np.full((16, 16), 128), fmt="JPEG")
    ds = load_dataset(f"folder:{tmp_path}")
    assert ds.images.shape == (1, 1, 16, 16) and abs(int(ds.images[0, 0, 8, 8]) - 128) <= 2


def test_mixed_sizes_need_image_size(tmp_path):
    _save(tmp_path / "a" / "1.png", np.full((28, 28), 50))
    _save(tmp_path / "b" / "2.png", np.full((32, 30), 90))
    with pytest.raises(DatasetError) as err:
        load_dataset(f"folder:{tmp_path}")
    assert str(err.value) == (f"folder:{tmp_path.resolve()}: images have different sizes (28x28 in a/1.png, "
                              f"30x32 in b/2.png); pass --image-size")
    ds = load_dataset(f"folder:{tmp_path}", image_size=16)
    assert ds.images.shape == (2, 1, 16, 16) and ds.labels.tolist() == [0, 1]
    assert ds.images[:, 0, 8, 8].tolist() == [50, 90]  # flat images stay flat when resized
    assert load_dataset(f"folder:{tmp_path}", image_size=(8, 12)).images.shape == (2, 1, 8, 12)


def test_empty_folder_and_missing_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(DatasetError, match=r"^folder:.*: no images found \(looked for \.png \.jpg \.jpeg\)$"):
        load_dataset(f"folder:{tmp_path}")
    with pytest.raises(DatasetError, match="no such folder"):
        load_dataset(f"folder:{tmp_path / 'nope'}")


def test_unreadable_image_names_it(tmp_path):
    _save(tmp_path / "good.png", np.zeros((4, 4)))
    (tmp_path / "bad.png").write_bytes(b"\x89PNG but not really")
    with pytest.raises(DatasetError, match=r"^folder:.*: bad\.png: unreadable image"):
        load_dataset(f"folder:{tmp_path}")


def test_truncated_png_names_it(tmp_path):
    _save(tmp_path / "a.png", np.random.default_rng(0).integers(0, 256, (64, 64)))
    data = (tmp_path / "a.png").read_bytes()
    (tmp_path / "a.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match=r"a\.png: unreadable image"):
        load_dataset(f"folder:{tmp_path}")


def test_second_load_uses_cache(two_class, monkeypatch):
    first = load_dataset(f"folder:{two_class}")
    cache = two_class / ".netbuilder-cache"
    assert sorted(p.suffix for p in cache.iterdir()) == [".json", ".npy"]

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again instead of using the cache")

    monkeypatch.setattr(folder_mod, "decode_image", no_decoding)
    second = load_dataset(f"folder:{two_class}")
    np.testing.assert_array_equal(second.images, first.images)
    assert second.labels.tolist() == first.labels.tolist() and second.fingerprint == first.fingerprint

    # A changed file changes the key: it is decoded again (and the patched decoder is hit).
    target = two_class / "Negative" / "n0.png"
    _save(target, np.full((12, 10), 99))
    os.utime(target, ns=(1, 1))
    with pytest.raises(AssertionError, match="decoded again"):
        load_dataset(f"folder:{two_class}")
    monkeypatch.undo()
    changed = load_dataset(f"folder:{two_class}")
    assert changed.images[0, 0, 5, 5] == 99 and changed.fingerprint != first.fingerprint
    # the entry for the old state of the files is gone; a resized view gets its own entry
    assert len(list(cache.glob("*.npy"))) == 1
    small = load_dataset(f"folder:{two_class}", image_size=6)
    assert small.images.shape == (5, 1, 6, 6) and small.fingerprint != changed.fingerprint
    assert len(list(cache.glob("*.npy"))) == 2


def test_large_cache_is_memory_mapped(two_class, monkeypatch):
    monkeypatch.setattr(folder_mod, "MMAP_THRESHOLD_BYTES", 100)
    ds = load_dataset(f"folder:{two_class}")
    assert isinstance(ds.images, np.memmap) and not ds.images.flags.writeable
    assert ds.images.shape == (5, 1, 12, 10)
    sub = ds.subset([4, 0])
    assert not isinstance(sub.images, np.memmap) and sub.labels.tolist() == [1, 0]


def test_read_only_folder_caches_in_user_cache(two_class, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    dirs = [two_class, two_class / "Negative", two_class / "Positive"]
    for d in dirs:
        d.chmod(0o555)  # a folder marked read-only stays untouched, even for root
    try:
        first = load_dataset(f"folder:{two_class}")
        monkeypatch.setattr(folder_mod, "decode_image", lambda *a, **k: 1 / 0)
        second = load_dataset(f"folder:{two_class}")
    finally:
        for d in dirs:
            d.chmod(0o755)
    np.testing.assert_array_equal(first.images, second.images)
    assert not (two_class / ".netbuilder-cache").exists()
    assert len(list((tmp_path / "xdg" / "netbuilder").rglob("*.npy"))) == 1


def test_images_at_top_and_in_subfolders_is_an_error(two_class):
    _save(two_class / "stray.png", np.zeros((12, 10)))
    with pytest.raises(DatasetError, match="images both at the top level"):
        load_dataset(f"folder:{two_class}")


def test_folder_has_only_all_split(two_class):
    with pytest.raises(DatasetError, match="has no 'train' split"):
        load_dataset(f"folder:{two_class}", split="train")


def test_large_photos_get_a_default_size(tmp_path, capsys):
    # One size: the aspect ratio is kept and the longest side becomes DEFAULT_MAX_SIDE (64).
    for i in range(2):
        _save(tmp_path / "same" / f"{i}.png", np.full((150, 200, 3), 40 * i + 20))
    ds = load_dataset(f"folder:{tmp_path / 'same'}")
    assert ds.images.shape == (2, 3, 48, 64) and ds.images[1, 0, 20, 30] == 60
    assert "resized to height 48, width 64 (the default; pass --image-size to choose)" in capsys.readouterr().err
    # The same data and size as an explicit --image-size, from the cache on the second load.
    again = load_dataset(f"folder:{tmp_path / 'same'}")
    assert again.fingerprint == ds.fingerprint == load_dataset(f"folder:{tmp_path / 'same'}",
                                                               image_size=(48, 64)).fingerprint
    assert "resized to height 48" in capsys.readouterr().err
    # Mixed sizes, one of them large: square.
    _save(tmp_path / "mixed" / "a.png", np.full((100, 70, 3), 9))
    _save(tmp_path / "mixed" / "b.png", np.full((30, 40, 3), 9))
    assert load_dataset(f"folder:{tmp_path / 'mixed'}").images.shape == (2, 3, 64, 64)
    # Small images are kept as they are, silently.
    _save(tmp_path / "small" / "a.png", np.full((64, 20), 9))
    assert load_dataset(f"folder:{tmp_path / 'small'}").images.shape == (1, 1, 64, 20)
    assert capsys.readouterr().err.count("resized") == 1  # the mixed folder only


def test_default_size_rule():
    assert folder_mod.default_size((64, 64), False, 64) is None
    assert folder_mod.default_size((3000, 4000), False, 4000) == (48, 64)
    assert folder_mod.default_size((4000, 30), False, 4000) == (64, 1)
    assert folder_mod.default_size((10, 10), True, 65) == (64, 64)
