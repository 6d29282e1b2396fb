"""``-a auto``: the rule that derives an arch from the input shape, the CLI that prints it, and a stage run with it."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from netbuilder.arch import auto_arch, auto_spec, build_autoencoder, choose_arch, load_arch_file
from netbuilder.arch.auto import TRAINING, code_size, parse_shape
from netbuilder.cli import main
from netbuilder.errors import ArchError

ROOT = Path(__file__).resolve().parents[1]
SHAPES = [(1, 28, 28), (3, 64, 64), (3, 128, 128), (1, 8, 8), (64,), (3, 96, 40), (1, 4, 4)]


def _convs(spec: dict) -> list[dict]:
    return [layer for layer in spec["encoder"] if layer["type"] == "conv"]


@pytest.mark.parametrize("shape", SHAPES, ids=["x".join(map(str, s)) for s in SHAPES])
def test_auto_arch_builds_and_reconstructs_the_input_shape(shape: tuple[int, ...]) -> None:
    model = build_autoencoder(auto_spec(shape, 7))
    x = torch.rand(2, *shape)
    x_hat, z = model(x)
    assert x_hat.shape == x.shape and z.shape == (2, 10)
    assert torch.allclose(z.norm(dim=1), torch.ones(2), atol=1e-5)  # l2-normalised code


def test_depth_kernels_and_filters_follow_the_rule() -> None:
    # 28 → 14 → 7 → 4: dcec-l2's kernels and filters, all "same" padded
    mnist = auto_arch((1, 28, 28), 10)
    assert [(c["filters"], c["kernel_size"], c["stride"]) for c in _convs(mnist)] == [(32, 5, 2), (64, 5, 2), (128, 3, 2)]
    assert mnist["defaults"]["conv"] == {"activation": "relu", "padding": "same"}
    # sides over 32 px are average-pooled first, by the least integer factor that brings each to at most 32
    big = auto_spec((3, 128, 128))
    assert big["encoder"][0] == {"type": "avgpool", "pool_size": 4, "stride": 4}
    assert big["encoder"][1:] == auto_spec((3, 32, 32))["encoder"]
    assert auto_arch((3, 96, 40))["encoder"][0] == {"type": "avgpool", "pool_size": [3, 2]}
    assert auto_arch((1, 32, 32))["encoder"][0]["type"] == "conv"        # 32 px: no pooling
    wide = auto_spec((1, 8, 400))                                        # 400 / 13 = 30, then doubling filters
    assert [c["filters"] for c in _convs(wide)] == [32, 64, 128] and wide["encoder"][0]["pool_size"] == [1, 13]
    assert len(_convs(auto_arch((1, 8, 8)))) == 1 and _convs(auto_arch((1, 8, 8)))[0]["kernel_size"] == 3
    # the last map is at most 4 px on its longer side
    model = build_autoencoder(auto_spec((3, 96, 40)))
    assert max(model.summary()[len(_convs(auto_arch((3, 96, 40))))]["output_shape"][1:]) <= 4
    assert tuple(model.summary()[0]["output_shape"]) == (3, 32, 20)
    # tiny images and vectors: a dense stack, like digits-dense (≤ 256 inputs) or dec-dense
    assert [layer.get("units") for layer in auto_arch((1, 4, 4))["encoder"]] == [None, 256, 128, 10]
    assert [layer["units"] for layer in auto_arch((784,))["encoder"]] == [500, 500, 2000, 10]


def test_code_size_and_the_rest_of_the_spec() -> None:
    assert [code_size(k) for k in (None, 2, 10, 25)] == [10, 10, 10, 25]
    spec = auto_spec((3, 64, 64), 25)
    assert spec["encoder"][-1]["units"] == 25 and spec["clustering"]["n_clusters"] == 25
    assert spec["latent"] == {"l2_normalize": True} and spec["output_activation"] == "linear"
    dcec_l2 = next(s for s in load_arch_file(ROOT / "netbuilder" / "archs" / "mnist.json") if s["name"] == "dcec-l2")
    assert spec["training"] == TRAINING
    # dcec-l2's pretraining, at least 1,000 steps on small data (min_steps) and, for images, at most about 1,000
    # on large data (max_steps: it only initialises SCAN); images are clustered by SCAN with its own loop
    # defaults, vectors (no shifts or rotations) by UMAP + k-means on codes pretrained for the full 20 epochs
    assert {**dcec_l2["training"], "cluster": {"loss": "scan"}, "min_steps": 1000, "max_steps": 1000} == TRAINING
    assert auto_spec((784,))["training"]["cluster"] == {"loss": "none", "manifold": "umap"}
    assert "max_steps" not in auto_spec((784,))["training"] and "max_steps" not in auto_spec((1, 4, 4))["training"]
    assert auto_spec((1, 4, 4))["training"]["cluster"] == {"loss": "none", "manifold": "umap"}
    assert auto_spec((3, 64, 64))["training"]["cluster"] == {"loss": "scan"}
    assert "clustering" not in auto_spec((3, 64, 64))  # unknown k: the stages ask for --clusters
    assert auto_arch((3, 64, 64), 4) == auto_arch([3, 64, 64], 4)  # depends on the shape and k only


@pytest.mark.parametrize("file,name,shape,k,threads", [("digits.json", "digits-scan", (1, 8, 8), 10, 1),
                                                        ("mnist.json", "mnist-scan", (1, 28, 28), 10, None),
                                                        ("coil20.json", "coil-scan", (1, 128, 128), 20, None)])
def test_the_shipped_default_is_the_auto_recipe(file: str, name: str, shape: tuple[int, ...], k: int,
                                                threads: int | None) -> None:
    # issue 17's "one recipe": DIGITS', MNIST's and COIL-20's shipped defaults are what -a auto derives for their
    # images and classes, with their own names and descriptions (DIGITS pins the thread count: its float sums
    # depend on it)
    shipped = load_arch_file(ROOT / "netbuilder" / "archs" / file)[0]
    derived = auto_spec(shape, k)
    assert shipped["name"] == name and shipped["training"].pop("threads", None) == threads
    for key in ("name", "description"):
        shipped.pop(key), derived.pop(key)
    assert shipped == derived


def test_signal_shape_gives_a_1d_conv_stack() -> None:
    spec = auto_arch((2, 1000), 3)
    convs = _convs(spec)
    assert spec["defaults"] == {"conv": {"activation": "relu", "padding": "same"}}
    # The 1-D rule of auto_signal.py: 1000 → 500 → 250 → 125 → 63 → 32 → 16 → 8, filters capped at 128.
    assert [c["filters"] for c in convs] == [32, 64, 128, 128, 128, 128, 128]
    assert [c["kernel_size"] for c in convs] == [5] + [3] * 6
    assert spec["training"]["batch_size"] == 64 and spec["clustering"]["n_clusters"] == 3
    assert spec["encoder"][-2:] == [{"type": "flatten"}, {"type": "dense", "units": 10, "activation": "linear"}]


def test_signal_auto_arch_builds_1d_modules() -> None:
    model = build_autoencoder(auto_spec((2, 1000), 3))
    assert any(isinstance(m, torch.nn.Conv1d) for m in model.modules())
    x = torch.rand(2, 2, 1000)
    assert model(x)[0].shape == x.shape


def test_parse_shape() -> None:
    assert parse_shape("3x64x64") == [3, 64, 64] and parse_shape("2,500") == [2, 500] and parse_shape("64") == [64]
    for bad in ("3x0x4", "a", "1x2x3x4", ""):
        with pytest.raises(ArchError, match="expected CxHxW"):
            parse_shape(bad)


def test_choose_arch(tmp_path: Path) -> None:
    assert choose_arch("folder:/data/photos").auto and choose_arch("USPS", "0").auto
    assert choose_arch("MNIST", "auto").auto and choose_arch("MNIST", "AUTO", archs="x.json").auto
    mnist = choose_arch("MNIST", "dcec")
    assert not mnist.auto and mnist.index == 2 and mnist.file.name == "mnist.json"
    assert mnist.resolve((1, 28, 28)) is mnist.spec
    with pytest.raises(ArchError, match="has no shipped archs file; pass --archs FILE"):
        choose_arch("folder:/data/photos", "dcec-l2")  # a name needs a file


def _cli(*args: str):
    return CliRunner().invoke(main, list(args))


def test_arch_show_auto() -> None:
    result = _cli("arch", "show", "auto", "--input-shape", "3x64x64", "--clusters", "12")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith('auto: arch 0 "auto" - Derived by netbuilder\'s auto rule for input 3x64x64')
    assert "decoder  conv_transpose 3@5x5 s2 same, linear" in result.stdout
    assert "code: 12, l2-normalised" in result.stdout and "clustering: 12 clusters" in result.stdout
    assert "auto needs --input-shape" in _cli("arch", "show", "auto").output
    assert "apply to auto only" in _cli("arch", "show", "MNIST", "--input-shape", "1x8x8").output
    assert "invalid input shape '3x64'x" in _cli("arch", "show", "auto", "--input-shape", "3x64'x").output


def test_arch_new_writes_a_valid_archs_file(tmp_path: Path) -> None:
    result = _cli("arch", "new", "--input-shape", "1x28x28", "--clusters", "10")
    assert result.exit_code == 0, result.output
    archs = json.loads(result.stdout)
    assert archs == [auto_arch((1, 28, 28), 10)]
    path = tmp_path / "my_archs.json"
    path.write_text(result.stdout)
    assert load_arch_file(path) == [auto_spec((1, 28, 28), 10)]
    assert _cli("arch", "validate", str(path)).stdout.startswith("ok   0 auto (code 10,")


def _photo(path: Path, size: tuple[int, int], colour: tuple[int, int, int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(colour) + rng.integers(-20, 20, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels, "RGB").save(path)


def test_run_with_the_default_auto_arch_on_a_folder_of_photos(tmp_path: Path) -> None:
    from netbuilder.stages.run import run_all

    root = tmp_path / "photos"
    for i in range(8):  # colour images of mixed sizes, larger than the default size
        _photo(root / "red" / f"r{i}.png", (70 + 10 * i, 90), (200, 30, 30), i)
        _photo(root / "blue" / f"b{i}.png", (100, 66 + i), (30, 30, 200), 100 + i)
    info = run_all(f"folder:{root}", out=str(tmp_path / "out"), visualize=False, echo=False, progress=False,
                   pretrain_epochs=1, cluster_epochs=1, threads=1)
    manifest = info["pretrain"]
    assert manifest["arch"]["file"] == "auto" and manifest["arch"]["name"] == "auto"
    assert manifest["arch"]["spec"] == auto_spec((3, 64, 64), 2)  # the default size of mixed large images
    assert manifest["dataset"]["shape"] == [3, 64, 64]
    assert info["cluster"]["n_clusters"] == 2 and 0.5 <= info["cluster"]["metrics"]["acc"] <= 1.0


@pytest.mark.filterwarnings("ignore::netbuilder.anomaly.TrainingCollapseWarning")  # 1 epoch: undertrained
def test_anomaly_accepts_auto(tmp_path: Path) -> None:
    from netbuilder.anomaly import AutoencoderAnomalyDetector
    from netbuilder.anomaly.experiment import load_inputs

    root = tmp_path / "photos"
    for i in range(3):
        _photo(root / f"p{i}.png", (12, 10), (90, 120, 30), i)
    inputs = load_inputs(f"folder:{root}", out=str(tmp_path / "out"), progress=False)  # default -a 0: auto
    assert inputs.auto and inputs.spec == auto_spec((3, 10, 12)) and str(inputs.arch_file) == "auto"
    X = np.random.default_rng(0).integers(0, 255, (16, 1, 8, 8), dtype=np.uint8)
    detector = AutoencoderAnomalyDetector(arch="auto", n_clusters=3, epochs=1, batch_size=8).fit(X)
    assert detector.spec_ == auto_spec((1, 8, 8), 3) and detector.decision_scores_.shape == (16,)
