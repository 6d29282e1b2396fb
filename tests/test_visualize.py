"""The plotting functions on synthetic arrays, and the visualize stage end to end on DIGITS."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

PIL = pytest.importorskip("PIL.Image")

from netbuilder import charts, plots  # noqa: E402


def _png(path: Path, min_size: tuple[int, int] = (200, 100), max_size: tuple[int, int] = (3000, 3000)) -> np.ndarray:
    """Open ``path`` as a PNG, check its size is plausible and that it shows something; return its pixels."""
    path = Path(path)
    assert path.is_file(), path
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with PIL.open(path) as im:
        im.load()
        w, h = im.size
        rgb = np.asarray(im.convert("RGB"))
    assert min_size[0] <= w <= max_size[0] and min_size[1] <= h <= max_size[1], (w, h)
    assert rgb.std() > 5, "the image is (nearly) uniform"
    # More than a couple of colours: text, markers or images were actually drawn.
    assert len(np.unique(rgb.reshape(-1, 3)[::7], axis=0)) > 10
    # No temporary file of the atomic write is left next to the plot.
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    return rgb


def _blobs(n: int = 300, k: int = 4, d: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    x = rng.normal(0, 6, (k, d))[labels] + rng.normal(0, 1, (n, d))
    return x.astype(np.float32), labels


def _images(n: int = 12, c: int = 1, size: int = 10, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    imgs = (rng.random((n, c, size, size)) * 120).astype(np.uint8)
    imgs[:, :, size // 4: 3 * size // 4, size // 4: 3 * size // 4] = 255
    return imgs


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One compute thread for this module: on a small shared machine, the OpenMP loops of t-SNE and torch
    slow down several-fold when their threads wait on cores that other jobs hold."""
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_embedding_2d_separates_blobs(method: str) -> None:
    x, labels = _blobs(n=150 if method == "tsne" else 300)
    emb = plots.embedding_2d(x, method, seed=0)
    assert emb.shape == (len(x), 2) and emb.dtype == np.float32 and np.isfinite(emb).all()
    # Well separated blobs stay separated: each point's nearest neighbour is (almost always) in its blob.
    d = ((emb[:, None] - emb[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    assert (labels[d.argmin(1)] == labels).mean() > 0.95


def test_embedding_2d_is_seeded_and_checks_its_input() -> None:
    x, _ = _blobs(n=80, d=60)  # wider than 50: t-SNE goes through PCA first
    a = plots.embedding_2d(x, "tsne", seed=3)
    b = plots.embedding_2d(x, "tsne", seed=3)
    np.testing.assert_allclose(a, b)
    with pytest.raises(ValueError, match="tsne"):
        plots.embedding_2d(x, "umap")
    with pytest.raises(ValueError, match="at least 3"):
        plots.embedding_2d(x[:2], "pca")


def test_scatter_pair_two_panels_and_one(tmp_path: Path) -> None:
    x, labels = _blobs()
    emb = plots.embedding_2d(x, "pca")
    pred = (labels + 1) % 4
    pred[:20] = 3
    both = _png(plots.scatter_pair(emb, labels, pred, "ACC 0.9 · NMI 0.8", tmp_path / "pair.png",
                                   class_names=["a", "b", "c", "d"]))
    one = _png(plots.scatter_pair(emb, None, pred, "clusters only", tmp_path / "one.png"))
    assert both.shape[1] > 1.6 * one.shape[1]  # side by side: about twice as wide
    with pytest.raises(ValueError, match="entries"):
        plots.scatter_pair(emb, labels[:-1], pred, "t", tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


def test_matched_clusters_take_their_class_colour() -> None:
    """A clustering that only renames the classes gets exactly the class colours, point by point."""
    _, labels = _blobs()
    pred = (labels + 2) % 4
    by_class, by_cluster = plots.category_colours(labels, pred)
    assert [by_class[int(v)] for v in labels] == [by_cluster[int(v)] for v in pred]
    assert len(set(by_class.values())) == 4

    # Two more clusters than classes: the surplus ones get colours that no class uses.
    pred6 = pred.copy()
    pred6[:10], pred6[10:20] = 4, 5
    by_class, by_cluster = plots.category_colours(labels, pred6)
    assert len(set(by_cluster.values())) == 6
    assert {by_cluster[4], by_cluster[5]}.isdisjoint(by_class.values())

    # Without labels, clusters still get distinct colours.
    _, alone = plots.category_colours(None, pred6)
    assert len(set(alone.values())) == 6


def test_scatter_pair_many_classes_uses_a_colour_key(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    emb = rng.normal(size=(400, 2))
    labels = rng.integers(0, 30, 400)
    _png(plots.scatter_pair(emb, labels, labels, "30 classes", tmp_path / "many.png"))


def test_image_grid_gray_and_rgb(tmp_path: Path) -> None:
    gray = _png(plots.image_grid(_images(9), tmp_path / "g.png", nrow=3, row_labels=["a", "b", "c"], title="t"))
    rgb = _png(plots.image_grid(_images(6, c=3), tmp_path / "c.png", nrow=2,
                                titles=[f"#{i}" for i in range(6)]), min_size=(150, 100))
    assert gray.shape[0] > rgb.shape[0]  # three rows are taller than two
    with pytest.raises(ValueError, match="C = 1 or 3"):
        plots.image_grid(np.zeros((2, 2, 5, 5), np.uint8), tmp_path / "x.png")


def test_image_grid_accepts_float_images(tmp_path: Path) -> None:
    imgs = _images(4).astype(np.float32) / 255.0
    imgs[0] += 0.5  # out of range: clipped for display, not an error
    _png(plots.image_grid(imgs, tmp_path / "f.png"), min_size=(100, 100))


def test_reconstruction_grid_rows(tmp_path: Path) -> None:
    orig = _images(12)
    rec = np.clip(orig / 255.0 + 0.05, 0, 1).astype(np.float32)
    one = _png(plots.reconstruction_grid(orig, rec, tmp_path / "r1.png", n=10))
    two = _png(plots.reconstruction_grid(orig, {"pretrain": rec, "cluster-kld": rec}, tmp_path / "r2.png", n=10))
    assert two.shape[0] > 1.3 * one.shape[0]  # a third row
    wrapped = _png(plots.reconstruction_grid(orig, rec, tmp_path / "r3.png", n=12, ncol=6))
    assert wrapped.shape[0] > 1.6 * one.shape[0]  # 12 examples in blocks of 6: twice the rows
    with pytest.raises(ValueError, match="shape"):
        plots.reconstruction_grid(orig, rec[:, :, :5], tmp_path / "bad.png")


def test_cluster_samples_grid_one_row_per_cluster(tmp_path: Path) -> None:
    imgs = _images(60)
    pred = np.repeat(np.arange(3), 20)
    three = _png(plots.cluster_samples_grid(imgs, pred, tmp_path / "c3.png", per_cluster=6,
                                            labels=pred % 2, class_names=["even", "odd"]))
    six = _png(plots.cluster_samples_grid(imgs, np.repeat(np.arange(6), 10), tmp_path / "c6.png", per_cluster=6))
    assert six.shape[0] > 1.6 * three.shape[0]
    # A cluster smaller than per_cluster is drawn with what it has.
    _png(plots.cluster_samples_grid(imgs[:7], np.array([0] * 6 + [1]), tmp_path / "small.png", per_cluster=4))


def test_error_heatmap_grid_uses_one_colour_scale(tmp_path: Path) -> None:
    orig = _images(8)
    rng = np.random.default_rng(2)
    rec = np.clip(orig / 255.0 + rng.normal(0, 0.1, orig.shape), 0, 1).astype(np.float32)
    rec[3] = 1.0 - orig[3] / 255.0  # one terrible reconstruction sets the top of the shared scale
    res = plots.error_heatmap_grid(orig, rec, tmp_path / "h.png", titles=[f"{i}" for i in range(8)])
    err = plots.pixel_errors(orig, rec)
    assert err.shape == (8, 10, 10)
    assert res.vmin == pytest.approx(float(err.min())) and res.vmax == pytest.approx(float(err.max()))
    assert res.vmax == pytest.approx(float(err[3].max()))
    _png(res.path)

    # A fixed scale (e.g. another figure's) is kept as given, not refitted to these errors.
    fixed = plots.error_heatmap_grid(orig[:4], rec[:4], tmp_path / "h2.png", vmin=0.0, vmax=2.0)
    assert (fixed.vmin, fixed.vmax) == (0.0, 2.0)
    # Perfect reconstructions (all errors 0) still draw.
    flat = plots.error_heatmap_grid(orig[:3], orig[:3], tmp_path / "h3.png")
    assert flat.vmin == 0.0 and flat.vmax > flat.vmin
    assert (tmp_path / "h3.png").is_file()


def test_error_heatmap_grid_rgb_and_custom_errors(tmp_path: Path) -> None:
    orig = _images(4, c=3)
    rec = orig[::-1].copy()
    custom = np.arange(4 * 10 * 10, dtype=np.float32).reshape(4, 10, 10)
    res = plots.error_heatmap_grid(orig, rec, tmp_path / "rgb.png", errors=custom)
    assert (res.vmin, res.vmax) == (0.0, float(custom.max()))
    _png(res.path, min_size=(150, 150))
    with pytest.raises(ValueError, match="errors have shape"):
        plots.error_heatmap_grid(orig, rec, tmp_path / "bad.png", errors=custom[:, :5])


def test_training_curves(tmp_path: Path) -> None:
    pre = [{"stage": "pretrain", "epoch": e, "step": 5 * e, "loss": 1.0 / e, "lr": 1e-3, "seconds": 0.1,
            "images_per_s": 1000.0, **({"acc": 0.5 + e / 50, "nmi": 0.4 + e / 50, "ari": 0.3} if e % 2 == 0 else {})}
           for e in range(1, 9)]
    kld = [{"stage": "cluster-kld", "epoch": e, "loss": 0.2 / e, "rec": 0.1 / e, "kl": 0.01 / e, "acc": 0.7 + e / 50,
            "nmi": 0.6 + e / 50} for e in range(1, 5)]
    torn = pre + [{"note": "no epoch"}]
    rgb = _png(charts.training_curves({"pretrain": torn, "cluster-kld": kld, "cluster-none": []}, tmp_path / "c.png"),
               min_size=(800, 300))
    only_loss = _png(charts.training_curves({"pretrain": [{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.4}]},
                                           tmp_path / "one.png"))
    assert only_loss.shape[1] < rgb.shape[1]  # one panel instead of a row of three
    with pytest.raises(ValueError, match="epoch record"):
        charts.training_curves({"pretrain": []}, tmp_path / "none.png")


def test_plots_do_not_touch_pyplot(tmp_path: Path) -> None:
    """Plots are drawn on private figures: nothing accumulates in pyplot across many calls."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    before = len(plt.get_fignums())
    plots.image_grid(_images(4), tmp_path / "a.png")
    plots.error_heatmap_grid(_images(2), _images(2, seed=1), tmp_path / "b.png")
    assert len(plt.get_fignums()) == before


# ------------------------------------------------------------------------------------------- the stage

def _stage_modules():
    try:
        from netbuilder.stages.visualize import visualize
        from netbuilder.stages.pretrain import pretrain
        from netbuilder.stages.cluster import cluster
    except ImportError as exc:  # the arch / datasets packages are not importable in this checkout
        pytest.skip(f"stage modules not importable: {exc}")
    return visualize, pretrain, cluster


def test_visualize_needs_pretrain(tmp_path: Path) -> None:
    visualize, _, _ = _stage_modules()
    from netbuilder.errors import StageError

    with pytest.raises(StageError, match="netbuilder pretrain"):
        visualize("DIGITS", "digits-dense", out=str(tmp_path), method="pca", n=200, device="cpu")
    assert not (tmp_path / "plots").exists() or not any((tmp_path / "plots").rglob("*.png"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _, pretrain, cluster = _stage_modules()
    out = tmp_path_factory.mktemp("vis")
    # Few probes and k-means restarts: the plots need the outputs to exist, not to be good.
    pretrain("DIGITS", "digits-dense", out=str(out), epochs=3, echo=False, progress=False, device="cpu", eval_every=3)
    cluster("DIGITS", "digits-dense", "kld", out=str(out), epochs=2, echo=False, progress=False, device="cpu", n_init=2)
    return out


def test_visualize_end_to_end(trained: Path) -> None:
    visualize, _, _ = _stage_modules()
    written = visualize("DIGITS", "digits-dense", out=str(trained), method="pca", n=400, device="cpu")
    names = {Path(p).name for p in written.values()}
    pca = {f"pca{d}d-{s}.png" for d in (2, 3) for s in ("pretrain", "cluster-kld")}
    assert names == {"embedding-pixels.png", "embedding-pretrain.png", "embedding-cluster-kld.png",
                     "reconstructions.png", "clusters-cluster-kld.png", "curves.png", *pca}
    plot_dir = {Path(p).parent for p in written.values()}
    assert len(plot_dir) == 1
    (d,) = plot_dir
    assert d.parts[-3] == "plots" and d.parts[-2] == "DIGITS"
    assert sorted(p.name for p in d.glob("*.png")) == sorted(names)
    for p in written.values():
        _png(Path(p))
    for name in pca:  # the PCA scatters hold hundreds of points: far more than an empty figure's bytes
        assert (d / name).stat().st_size > 30_000, name


def test_visualize_command(trained: Path) -> None:
    _stage_modules()
    from click.testing import CliRunner

    from netbuilder.stages.visualize import visualize_cmd

    # The outputs already exist from the end-to-end test; the command overwrites them in place.
    res = CliRunner().invoke(visualize_cmd, ["-d", "DIGITS", "-a", "digits-dense", "--out", str(trained),
                                             "--method", "pca",
                                             "--n", "150", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert "wrote 10 plots" in res.output
    assert "embedding-cluster-kld.png" in res.output
    bad = CliRunner().invoke(visualize_cmd, ["-d", "DIGITS", "--out", str(trained), "--method", "umap"])
    assert bad.exit_code == 2 and "umap" in bad.output
    assert os.path.isdir(trained / "plots")
