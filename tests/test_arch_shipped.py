"""Every shipped arch builds and runs; the original project's MNIST networks load from both formats."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from netbuilder.arch import build_autoencoder, load_arch_file, resolve_arch_file, resolve_spec, select_arch
from netbuilder.errors import ArchError

ROOT = Path(__file__).resolve().parents[1]
ARCHS = ROOT / "netbuilder" / "archs"  # the shipped archs files (package data)
ARCH_FILES = sorted(ARCHS.glob("*.json"))
LEGACY = ROOT / "tests" / "data" / "legacy_mnist.json"
SHIPPED = [(f, i) for f in ARCH_FILES for i in range(len(json.loads(f.read_text())))]

ORIGINAL_ENCODER_SHAPES = [(50, 24, 24), (50, 12, 12), (50, 8, 8), (50, 4, 4), (120, 1, 1)]


def test_shipped_files_exist_with_expected_names() -> None:
    names = {f.name: [s["name"] for s in load_arch_file(f)] for f in ARCH_FILES}
    # arch 0 is the default; original-c5 stays at index 1 (the predecessor's `-a 1`)
    assert names["mnist.json"] == ["mnist-scan", "original-c5", "dcec", "dec-dense", "dcec-l2-bce", "dcec-l2"]
    assert names["coil20.json"] == ["coil-scan", "coil-conv-l2", "coil-conv"]
    assert names["digits.json"] == ["digits-scan", "digits-dense", "digits-dense-l2", "digits-conv"]


@pytest.mark.parametrize("path,index", SHIPPED, ids=[f"{f.stem}-{i}" for f, i in SHIPPED])
def test_shipped_arch_forward(path: Path, index: int) -> None:
    spec = load_arch_file(path)[index]
    torch.manual_seed(0)
    model = build_autoencoder(spec)
    x = torch.rand(3, *model.input_shape)
    with torch.no_grad():
        x_hat, z = model(x)
    assert x_hat.shape == x.shape
    assert z.shape == (3, model.code_dim)
    assert not torch.isnan(x_hat).any() and not torch.isnan(z).any()
    # a sigmoid output keeps reconstructions in the data range; MSE archs may use a linear one (dcec-l2)
    assert spec["output_activation"] in ("sigmoid", "linear")
    if spec["output_activation"] == "sigmoid":
        assert 0 <= float(x_hat.min()) and float(x_hat.max()) <= 1
    else:
        assert spec["training"]["recon_loss"] == "mse"
    if model.l2_normalized:
        assert torch.allclose(z.norm(dim=1), torch.ones(3), atol=1e-5)
    else:
        assert not torch.allclose(z.norm(dim=1), torch.ones(3), atol=1e-3)
    assert model.l2_normalized == spec["latent"]["l2_normalize"]


def test_mnist_code_sizes_and_training_sections() -> None:
    specs = load_arch_file(ARCHS / "mnist.json")
    dims = [build_autoencoder(s).code_dim for s in specs]
    assert dims == [10, 120, 10, 10, 10, 10]
    by_name = {s["name"]: s for s in specs}
    # MNIST's recipe until the 19th stop (seed 0: ACC 0.9834 / NMI 0.9544) is these settings; dcec-l2-bce is older
    assert by_name["dcec-l2"]["training"] == {"batch_size": 256, "epochs": 20, "lr": 0.001, "optimizer": "adam",
                                    "schedule": "none", "recon_loss": "mse",
                                    "cluster": {"loss": "selflabel", "manifold": "umap", "epochs": 9, "lr": 0.001,
                                                "augment": True, "relabel_every": 3}}
    assert by_name["dcec-l2"]["output_activation"] == "linear"
    assert specs[4]["name"] == "dcec-l2-bce" and specs[4]["training"]["recon_loss"] == "bce"
    assert specs[4]["encoder"] == by_name["dcec-l2"]["encoder"]
    assert specs[1]["training"]["batch_size"] == 100
    assert all(s["clustering"] == {"n_clusters": 10, "alpha": 1.0} for s in specs)
    assert load_arch_file(ARCHS / "coil20.json")[0]["clustering"]["n_clusters"] == 20


def test_dcec_stack_mirrors_28_14_7_3_back_to_28() -> None:
    model = build_autoencoder(load_arch_file(ARCHS / "mnist.json")[5])  # dcec-l2 ("valid" padding)
    rows = model.summary()
    enc = [r["output_shape"] for r in rows if r["part"] == "encoder"]
    dec = [r["output_shape"] for r in rows if r["part"] == "decoder"]
    assert enc[:3] == [(32, 14, 14), (64, 7, 7), (128, 3, 3)]
    assert dec == [(1152,), (128, 3, 3), (64, 7, 7), (32, 14, 14), (1, 28, 28)]
    # Decoder activations follow the representation they restore; the last is the arch's output activation
    # (linear for the MSE-trained dcec-l2: a sigmoid trained on MSE can saturate and collapse).
    layers = [r["layer"] for r in rows if r["part"] == "decoder"]
    assert layers[0].endswith("relu") and layers[-1].endswith("linear")


def test_dec_dense_ends_with_reshape_to_image() -> None:
    spec = select_arch(load_arch_file(ARCHS / "mnist.json"), "dec-dense")[1]
    model = build_autoencoder(spec)
    rows = model.summary()
    assert [r["output_shape"] for r in rows if r["part"] == "decoder"][-2:] == [(784,), (1, 28, 28)]
    assert sum(r["params"] for r in rows) == sum(p.numel() for p in model.parameters())


def _shapes(model) -> tuple[list, list]:
    rows = model.summary()
    return ([r["output_shape"] for r in rows if r["part"] == "encoder"],
            [r["output_shape"] for r in rows if r["part"] == "decoder"])


def test_original_c5_shapes() -> None:
    model = build_autoencoder(load_arch_file(ARCHS / "mnist.json")[1])
    enc, dec = _shapes(model)
    assert enc == ORIGINAL_ENCODER_SHAPES
    assert dec[-1] == (1, 28, 28)
    assert model.code_dim == 120


def test_legacy_file_builds_the_same_network() -> None:
    legacy = load_arch_file(LEGACY)
    assert [s["name"] for s in legacy] == ["c-5", "c-5-indices"]
    new = load_arch_file(ARCHS / "mnist.json")[1]
    reference = build_autoencoder(new)
    for spec in legacy:
        assert spec["legacy"] is True and spec["training"] == {"batch_size": 100}
        model = build_autoencoder(spec)
        enc, dec = _shapes(model)
        assert enc == ORIGINAL_ENCODER_SHAPES
        assert dec == _shapes(reference)[1] and dec[-1] == (1, 28, 28)
        assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in reference.parameters())
        # batch norm on every conv but the code layer (encoder) and the output layer (decoder)
        bn = ["bn" in r["layer"].split(", ") for r in model.summary() if "conv" in r["layer"]]
        assert bn == [True, True, False, True, True, False]
    # The plain MaxPool2D version is the same spec as the shipped one, apart from its name and origin.
    plain = {k: v for k, v in legacy[0].items() if k not in ("name", "legacy")}
    assert plain == {k: v for k, v in new.items() if k not in ("name", "description", "clustering")}


def test_max_indices_unpooling_uses_the_same_pass() -> None:
    torch.manual_seed(0)
    model = build_autoencoder(load_arch_file(LEGACY)[1]).eval()
    x = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        x_hat, z = model(x)
        assert x_hat.shape == x.shape
        with pytest.raises(ArchError, match="decode\\(\\) needs a preceding encode\\(\\)"):
            model.decode(z)
        again = model.decode(model.encode(x))  # encode then decode of the same batch is allowed
    assert torch.allclose(again, x_hat)


def test_max_indices_unpool_places_values_at_the_argmax() -> None:
    spec = {"name": "pool", "input_shape": [1, 4, 4], "output_activation": "linear",
            "encoder": [{"type": "maxpool", "return_indices": True}]}
    model = build_autoencoder(spec)
    x = torch.tensor([[[[1., 2, 0, 0], [0, 0, 0, 5], [0, 3, 0, 0], [0, 0, 4, 0]]]])
    x_hat, z = model(x)
    assert z.tolist() == [[2.0, 5.0, 3.0, 4.0]]
    assert torch.equal(x_hat, torch.where(x >= 2, x, torch.zeros_like(x)))


def test_input_shape_override() -> None:
    spec = load_arch_file(ARCHS / "mnist.json")[0]
    model = build_autoencoder(spec, input_shape=(3, 32, 32))
    assert model.input_shape == (3, 32, 32) and model.spec["input_shape"] == [3, 32, 32]
    x_hat, z = model(torch.rand(2, 3, 32, 32))
    assert x_hat.shape == (2, 3, 32, 32) and z.shape == (2, 10)
    with pytest.raises(ArchError) as err:
        build_autoencoder(load_arch_file(ARCHS / "mnist.json")[1], input_shape=(1, 8, 8))
    assert str(err.value).startswith('arch "original-c5" (input 1x8x8): /encoder/2/kernel_size: 5 is larger than '
                                     'the 2x2 input (the output would be -2x-2)')


def test_encode_rejects_wrong_input_shape() -> None:
    model = build_autoencoder(load_arch_file(ARCHS / "digits.json")[0])
    with pytest.raises(ArchError, match=r"expects inputs of shape \(N, 1, 8, 8\)"):
        model.encode(torch.rand(2, 1, 28, 28))


@pytest.mark.parametrize("path", ARCH_FILES + [LEGACY], ids=lambda p: p.stem)
def test_resolved_specs_are_plain_json_and_idempotent(path: Path) -> None:
    for spec in load_arch_file(path):
        assert json.loads(json.dumps(spec)) == spec  # manifests store and compare the resolved spec
        again, _ = resolve_spec(spec)
        assert again == spec


def test_expanded_mirror_decoder_builds_identically() -> None:
    for spec in load_arch_file(ARCHS / "mnist.json") + load_arch_file(LEGACY):
        resolved, plan = resolve_spec(spec)
        explicit = dict(resolved, decoder=plan.decoder_configs())
        _, plan2 = resolve_spec(explicit)
        assert [(p.layer.get_config(), p.output_shape) for p in plan2.decoder] == \
               [(p.layer.get_config(), p.output_shape) for p in plan.decoder]


def test_resolve_arch_file_by_dataset_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_arch_file("MNIST") == ARCHS / "mnist.json"
    assert resolve_arch_file("COIL-20") == ARCHS / "coil20.json"
    assert resolve_arch_file("digits") == ARCHS / "digits.json"
    (tmp_path / "archs").mkdir()
    local = tmp_path / "archs" / "mnist.json"
    local.write_text("[]")
    assert resolve_arch_file("mnist").resolve() == local  # the current directory's archs come first
    mine = tmp_path / "mine.json"
    mine.write_text("[]")
    assert resolve_arch_file(str(mine)) == mine
    with pytest.raises(ArchError, match="pass --archs FILE"):
        resolve_arch_file("folder:/data/pictures")
    with pytest.raises(ArchError, match="shipped: coil20.json, digits.json, mnist.json"):
        resolve_arch_file("CIFAR-10")
    with pytest.raises(ArchError, match="missing.json: no such file"):
        resolve_arch_file("missing.json")


def test_select_arch() -> None:
    specs = load_arch_file(ARCHS / "mnist.json")
    assert select_arch(specs, 1)[0] == 1
    assert select_arch(specs, "3")[1]["name"] == "dec-dense"
    assert select_arch(specs, "dcec")[0] == 2
    assert select_arch(specs, "DCEC-L2")[0] == 5
    with pytest.raises(ArchError) as err:
        select_arch(specs, "dcec-l3", source="archs/mnist.json")
    assert str(err.value) == ("archs/mnist.json: no arch named 'dcec-l3'; did you mean 'dcec-l2'? (available: "
                              "0 mnist-scan, 1 original-c5, 2 dcec, 3 dec-dense, 4 dcec-l2-bce, 5 dcec-l2)")
    with pytest.raises(ArchError, match="arch index 6 is out of range, expected 0 to 5"):
        select_arch(specs, 6)
