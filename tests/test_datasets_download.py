"""Downloads against a loopback HTTP server serving generated files: good, truncated, wrong checksum, 404."""
from __future__ import annotations

import hashlib
import http.server
import io
import threading
import zipfile

import numpy as np
import pytest
from PIL import Image

from netbuilder.datasets import coil20, idxsets, load_dataset
from netbuilder.datasets.download import MIRROR_ENV, download, mirror_urls
from netbuilder.datasets.idx import write_idx
from netbuilder.errors import DatasetError


class _Handler(http.server.BaseHTTPRequestHandler):
    # HTTP/1.0: the connection closes after each response, so a short body reads as truncated.
    def do_GET(self):  # noqa: N802 - http.server API
        self.server.requests.append(self.path)
        route = self.server.routes.get(self.path)
        if route is None:
            self.send_error(404, "Not Found")
            return
        body, declared = route
        self.send_response(200)
        self.send_header("Content-Length", str(declared if declared is not None else len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture()
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.routes, srv.requests = {}, []
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(5)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_success_verifies_and_renames(server, tmp_path):
    body = np.random.default_rng(1).bytes(300_000)
    server.routes["/f.bin"] = (body, None)
    dest = tmp_path / "sub" / "f.bin"
    assert download([server.url + "/f.bin"], dest, sha256=_sha(body), md5=hashlib.md5(body).hexdigest(),
                    progress=True) == dest
    assert dest.read_bytes() == body
    assert _leftovers(dest.parent) == ["f.bin"]


def test_truncated_body_leaves_nothing(server, tmp_path):
    body = b"x" * 50_000
    server.routes["/f.gz"] = (body[:20_000], len(body))
    dest = tmp_path / "f.gz"
    with pytest.raises(DatasetError) as err:
        download([server.url + "/f.gz"], tmp_path / "new" / "f.gz", sha256=_sha(body), progress=False)
    assert not (tmp_path / "new").exists()  # the folder made for the download goes too
    with pytest.raises(DatasetError) as err:
        download([server.url + "/f.gz"], dest, sha256=_sha(body), progress=False)
    msg = str(err.value)
    assert "could not download f.gz" in msg and "truncated" in msg
    assert f"place the file by hand at {dest} (sha256 {_sha(body)})" in msg
    assert "\n" not in msg
    assert _leftovers(tmp_path) == []


def test_wrong_checksum_leaves_nothing(server, tmp_path):
    server.routes["/f.gz"] = (b"not the file you want", None)
    dest = tmp_path / "f.gz"
    expected = _sha(b"the real thing")
    with pytest.raises(DatasetError, match=f"sha256 mismatch \\(expected {expected}, got "
                                           f"{_sha(b'not the file you want')}\\)"):
        download([server.url + "/f.gz"], dest, sha256=expected, progress=False)
    assert _leftovers(tmp_path) == []


def test_md5_only_is_checked(server, tmp_path):
    server.routes["/f"] = (b"abc", None)
    with pytest.raises(DatasetError, match="md5 mismatch"):
        download(server.url + "/f", tmp_path / "f", md5="0" * 32, progress=False)
    assert _leftovers(tmp_path) == []
    download(server.url + "/f", tmp_path / "f", md5=hashlib.md5(b"abc").hexdigest(), progress=False)
    assert (tmp_path / "f").read_bytes() == b"abc"


def test_404_then_next_mirror(server, tmp_path):
    server.routes["/b/f"] = (b"payload", None)
    dest = tmp_path / "f"
    with pytest.raises(DatasetError, match=r"/a/f: HTTP 404"):
        download([server.url + "/a/f"], dest, sha256=_sha(b"payload"), progress=False)
    assert _leftovers(tmp_path) == []
    download([server.url + "/a/f", server.url + "/b/f"], dest, sha256=_sha(b"payload"), progress=False)
    assert dest.read_bytes() == b"payload"
    assert server.requests == ["/a/f", "/a/f", "/b/f"]


def test_mirror_env_replaces_default_mirrors(monkeypatch):
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    assert mirror_urls("mnist", "a.gz", ["https://x/y/", "https://z"]) == ["https://x/y/a.gz", "https://z/a.gz"]
    monkeypatch.setenv(MIRROR_ENV, "http://127.0.0.1:9/m/, http://h2")
    assert mirror_urls("mnist", "a.gz", ["https://x/"]) == ["http://127.0.0.1:9/m/mnist/a.gz", "http://h2/mnist/a.gz"]


def _fake_mnist(n_train=30, n_test=12):
    """The four gz files of a tiny MNIST (as bytes), written with write_idx."""
    import tempfile
    from pathlib import Path

    rng = np.random.default_rng(7)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": (np.arange(n_train) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": (np.arange(n_test) % 10).astype(np.uint8),
    }
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, arr in arrays.items():
            write_idx(Path(tmp) / name, arr)
            out[name] = (Path(tmp) / name).read_bytes()
    return out, arrays


def test_mnist_downloads_from_mirror_then_loads_offline(server, tmp_path, monkeypatch):
    files, arrays = _fake_mnist()
    for name, data in files.items():
        server.routes[f"/mirror/mnist/{name}"] = (data, None)
        monkeypatch.setitem(idxsets.MNIST_FILES, name, idxsets.Checksum(sha256=_sha(data)))
    monkeypatch.setenv(MIRROR_ENV, server.url + "/mirror")
    ds = load_dataset("mnist", data_dir=tmp_path, progress=False)
    assert ds.images.shape == (42, 1, 28, 28) and ds.labels.tolist()[:12] == list(range(10)) + [0, 1]
    np.testing.assert_array_equal(ds.images[30:, 0], arrays["t10k-images-idx3-ubyte.gz"])
    assert _leftovers(tmp_path / "mnist") == sorted(files)
    assert len(server.requests) == 4
    again = load_dataset("MNIST", data_dir=tmp_path, download=False, progress=False)
    assert len(server.requests) == 4 and again.fingerprint == ds.fingerprint


def test_mnist_failed_download_says_where_to_put_files(server, tmp_path, monkeypatch):
    files, _ = _fake_mnist()
    for name, data in files.items():
        monkeypatch.setitem(idxsets.MNIST_FILES, name, idxsets.Checksum(sha256=_sha(data)))
        if name != "t10k-images-idx3-ubyte.gz":
            server.routes[f"/mnist/{name}"] = (data, None)
    server.routes["/mnist/t10k-images-idx3-ubyte.gz"] = (files["t10k-images-idx3-ubyte.gz"][:100], None)
    monkeypatch.setenv(MIRROR_ENV, server.url)
    with pytest.raises(DatasetError) as err:
        load_dataset("MNIST", data_dir=tmp_path, split="test", progress=False)
    dest = tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz"
    assert f"could not download t10k-images-idx3-ubyte.gz ({server.url}/mnist/t10k-images-idx3-ubyte.gz: " \
           f"sha256 mismatch" in str(err.value)
    assert f"place the file by hand at {dest}" in str(err.value)
    sha = _sha(files["t10k-labels-idx1-ubyte.gz"])
    assert str(err.value).endswith(f"; also missing there: t10k-labels-idx1-ubyte.gz (sha256 {sha})")
    assert not (tmp_path / "mnist").exists()  # the image file failed first: nothing kept, not even the folder


def _png(value: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((128, 128), value, dtype=np.uint8), "L").save(buf, format="PNG")
    return buf.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_coil20_zip_download_is_checked_per_image(server, tmp_path, monkeypatch):
    pngs = {"obj1__0.png": _png(10), "obj1__1.png": _png(20), "obj2__0.png": _png(30)}
    monkeypatch.setattr(coil20, "expected_sums", lambda: {n: _sha(d) for n, d in pngs.items()})
    monkeypatch.setenv(MIRROR_ENV, server.url)
    members = {f"coil-20-proc/{n}": d for n, d in pngs.items()}

    # A member that does not match the shipped checksums: nothing is kept, not even the zip.
    server.routes["/coil20/coil-20-proc.zip"] = (_zip({**members, "coil-20-proc/obj2__0.png": _png(31)}), None)
    with pytest.raises(DatasetError, match=f"obj2__0.png: sha256 mismatch \\(expected {_sha(pngs['obj2__0.png'])}"):
        load_dataset("COIL20", data_dir=tmp_path, progress=False)
    assert _leftovers(tmp_path / "coil20") == []

    server.routes["/coil20/coil-20-proc.zip"] = (_zip({**members, "coil-20-proc/Icon\r": b"junk"}), None)
    ds = load_dataset("coil-20", data_dir=tmp_path, progress=False)
    assert ds.images.shape == (3, 1, 128, 128)
    assert ds.labels.tolist() == [0, 0, 1] and ds.images[:, 0, 0, 0].tolist() == [10, 20, 30]
    assert _leftovers(tmp_path / "coil20") == ["coil-20-proc"]
    assert _leftovers(tmp_path / "coil20" / "coil-20-proc") == sorted(pngs)


def test_missing_files_without_download(tmp_path):
    with pytest.raises(DatasetError) as err:
        load_dataset("MNIST", data_dir=tmp_path, download=False)
    msg = str(err.value)
    assert msg.startswith(f"MNIST: missing in {tmp_path / 'mnist'}: train-images-idx3-ubyte.gz (sha256 440fcabf")
    assert "t10k-labels-idx1-ubyte.gz (sha256 f7ae60f9" in msg and "downloading is off" in msg
    assert not (tmp_path / "mnist").exists()


def test_coil20_zip_placed_by_hand_is_used_and_kept(tmp_path, monkeypatch):
    pngs = {"obj1__0.png": _png(5), "obj3__2.png": _png(6)}
    monkeypatch.setattr(coil20, "expected_sums", lambda: {n: _sha(d) for n, d in pngs.items()})
    (tmp_path / "coil20").mkdir()
    (tmp_path / "coil20" / "coil-20-proc.zip").write_bytes(_zip(pngs))  # flat archive layout works too
    ds = load_dataset("COIL20", data_dir=tmp_path, download=False, progress=False)
    assert ds.labels.tolist() == [0, 2] and ds.class_names[2] == "obj3"
    assert _leftovers(tmp_path / "coil20") == ["coil-20-proc", "coil-20-proc.zip"]


def test_coil20_failed_download_leaves_nothing(server, tmp_path, monkeypatch):
    monkeypatch.setenv(MIRROR_ENV, server.url)
    with pytest.raises(DatasetError) as err:
        load_dataset("COIL20", data_dir=tmp_path, progress=False)
    msg = str(err.value)
    assert msg.startswith(f"COIL20: could not download coil-20-proc.zip ({server.url}/coil20/coil-20-proc.zip: "
                          f"HTTP 404")
    assert f"place obj1..20__0..71.png from https://www.cs.columbia.edu/" in msg
    assert _leftovers(tmp_path) == []


def test_coil20_corrupt_local_image_names_file_and_checksum(tmp_path, monkeypatch):
    pngs = {"obj1__0.png": _png(5), "obj2__0.png": _png(6)}
    sums = {n: _sha(d) for n, d in pngs.items()}
    monkeypatch.setattr(coil20, "expected_sums", lambda: sums)
    folder = tmp_path / "coil20" / "coil-20-proc"
    folder.mkdir(parents=True)
    for n, d in pngs.items():
        (folder / n).write_bytes(d)
    assert len(load_dataset("COIL20", data_dir=tmp_path, download=False)) == 2
    (folder / "obj2__0.png").write_bytes(pngs["obj2__0.png"][:-20])
    with pytest.raises(DatasetError, match=f"obj2__0.png: sha256 mismatch \\(expected {sums['obj2__0.png']}, got "):
        load_dataset("COIL20", data_dir=tmp_path, download=False)
