"""Scaling benchmarks: training images/s with 1 and 2 processes (torchrun), and a folder dataset larger than
the memory budget trained in one epoch under a peak-RSS limit.

Usage:
    NETBUILDER_DATA=/work/shared/data python bench/scale.py procs [--dataset MNIST] [--arch dcec-l2] [--epochs 1]
        [--nprocs 1 2] [--device cpu|cuda] [--workdir bench/work] [--results bench/results]
    python bench/scale.py folder [--images 200000] [--size 64] [--workdir bench/work/folder]

``procs`` runs ``torchrun --standalone --nproc_per_node N -m netbuilder pretrain ...`` for each N (on CPU each
rank gets cores/N threads, so the machine's cores are shared, not oversubscribed) and reads images/s from the
manifest. ``folder`` generates N flat RGB PNGs (smooth random blobs, so files stay small) once, then runs
``netbuilder pretrain -d folder:... --epochs 1`` in a child process and reports its peak RSS (``ru_maxrss`` of
the child, which includes the decoding into the cache, one training epoch, and encoding every image) and the
uint8 size of the data. Results go to ``bench/results/scale.json`` / ``.md`` (merged with earlier parts).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from multiprocessing import Pool
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_DATA, REPO, machine_info  # noqa: E402

RESULTS = REPO / "bench" / "results"

FOLDER_ARCH = [{
    "name": "stream-conv",
    "description": "Small strided conv AE for 64x64 RGB: 16@4/2, 32@4/2, 32@4/2, dense 32 (the scaling benchmark).",
    "input_shape": [3, 64, 64],
    "defaults": {"conv": {"activation": "relu", "padding": "same"}},
    "encoder": [{"type": "conv", "filters": 16, "kernel_size": 4, "stride": 2},
                {"type": "conv", "filters": 32, "kernel_size": 4, "stride": 2},
                {"type": "conv", "filters": 32, "kernel_size": 4, "stride": 2},
                {"type": "flatten"}, {"type": "dense", "units": 32, "activation": "linear"}],
    "training": {"epochs": 1, "batch_size": 256, "recon_loss": "mse"},
}]


def _run(cmd: list[str], env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess, float, float]:
    """Run ``cmd``; return the result, wall seconds and the peak RSS (MiB) of its largest child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    # RUSAGE_CHILDREN's ru_maxrss is the largest of the waited-for descendants (KiB on Linux)
    return proc, wall, max(before, after) / 1024.0


def procs(args: argparse.Namespace) -> dict:
    env = dict(os.environ)
    env.setdefault("NETBUILDER_DATA", str(DEFAULT_DATA))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    rows = []
    for n in args.nprocs:
        out = Path(args.workdir).resolve() / f"scale-procs-{n}"
        threads = max(1, cores // n) if args.device == "cpu" else 1
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(n),
               "-m", "netbuilder", "pretrain", "-d", args.dataset, "-a", args.arch, "--epochs", str(args.epochs),
               "--out", str(out), "--device", args.device, "--threads", str(threads), "--no-progress",
               "--eval-every", str(args.epochs * 10)]
        env["OMP_NUM_THREADS"] = str(threads)
        _, wall, _ = _run(cmd, env)
        man = next(out.glob("saved_params/*/*/pretrain/manifest.json"))
        m = json.loads(man.read_text())
        row = {"processes": n, "threads_per_process": threads, "device": m["device"],
               "images_per_s": m["timings"]["images_per_s"], "train_s": m["timings"]["train_s"],
               "wall_s": round(wall, 1), "steps": m["steps"], "acc_after_kmeans": round(m["metrics"].get("acc", 0), 4),
               "command": " ".join(cmd[1:])}
        print(f"{n} process(es) x {threads} thread(s): {row['images_per_s']:.0f} images/s "
              f"(train {row['train_s']} s, wall {row['wall_s']} s, {row['steps']} steps)", flush=True)
        rows.append(row)
    base = rows[0]["images_per_s"]
    for r in rows:
        r["speedup"] = round(r["images_per_s"] / base, 3)
    return {"dataset": args.dataset, "arch": args.arch, "epochs": args.epochs, "rows": rows}


def _blob_image(i: int, size: int):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(i)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    img = np.zeros((size, size, 3), np.float32)
    for _ in range(3):
        cy, cx, r = rng.uniform(0, size, 2).tolist() + [rng.uniform(size / 10, size / 3)]
        img += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))[..., None] * rng.uniform(0, 255, 3)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def _write_range(job: tuple[str, int, int, int]) -> int:
    folder, start, stop, size = job
    for i in range(start, stop):
        _blob_image(i, size).save(Path(folder) / f"img{i:06d}.png", compress_level=1)
    return stop - start


def make_folder(folder: Path, n: int, size: int) -> float:
    """Write ``n`` PNGs (skipped when the folder already holds them); returns the seconds it took."""
    folder.mkdir(parents=True, exist_ok=True)
    have = sum(1 for _ in folder.glob("img*.png"))
    if have == n:
        return 0.0
    t0 = time.perf_counter()
    step = 2000
    with Pool(max(1, os.cpu_count() or 1)) as pool:
        pool.map(_write_range, [(str(folder), s, min(s + step, n), size) for s in range(0, n, step)])
    return time.perf_counter() - t0


def folder(args: argparse.Namespace) -> dict:
    work = Path(args.workdir).resolve()
    data = work / f"blobs-{args.images}-{args.size}"
    gen_s = make_folder(data, args.images, args.size)
    print(f"{args.images} images of {args.size}x{args.size} RGB in {data} (generated in {gen_s:.0f} s)", flush=True)
    arch_file = work / "stream-arch.json"
    spec = json.loads(json.dumps(FOLDER_ARCH))
    spec[0]["input_shape"] = [3, args.size, args.size]
    arch_file.write_text(json.dumps(spec, indent=1))
    for cache in data.glob(".netbuilder-cache"):
        # decode from the PNGs every time: the measurement includes building the cache
        for f in cache.iterdir():
            f.unlink()
    out = work / "out"
    cmd = [sys.executable, "-m", "netbuilder", "pretrain", "-d", f"folder:{data}", "--archs", str(arch_file),
           "--epochs", "1", "--out", str(out), "--no-progress"]
    _, wall, rss = _run(cmd)
    m = json.loads(next(out.glob("saved_params/*/*/pretrain/manifest.json")).read_text())
    nbytes = args.images * 3 * args.size * args.size
    row = {"images": args.images, "shape": [3, args.size, args.size], "uint8_gib": round(nbytes / 2**30, 2),
           "peak_rss_mib": round(rss), "wall_s": round(wall, 1), "train_s": m["timings"]["train_s"],
           "images_per_s": m["timings"]["images_per_s"], "steps": m["steps"], "command": " ".join(cmd[1:])}
    print(f"one epoch: {row['images_per_s']:.0f} images/s, peak RSS {row['peak_rss_mib']} MiB for "
          f"{row['uint8_gib']} GiB of uint8 images (wall {row['wall_s']} s incl. decoding)", flush=True)
    return row


def write(part: str, result: dict, results: Path = RESULTS) -> None:
    results.mkdir(parents=True, exist_ok=True)
    path = results / "scale.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data[part] = {**result, "machine": machine_info()}
    path.write_text(json.dumps(data, indent=2) + "\n")
    lines = ["# Scaling (bench/scale.py)", ""]
    if "procs" in data:
        p = data["procs"]
        lines += [f"## Processes: `pretrain -d {p['dataset']} -a {p['arch']}`, {p['epochs']} epoch(s)", "",
                  "| processes | threads each | device | images/s | speed-up | steps | train s |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {r['processes']} | {r['threads_per_process']} | {r['device']} | {r['images_per_s']:.0f} | "
                  f"{r['speedup']:.2f} | {r['steps']} | {r['train_s']} |" for r in p["rows"]]
        lines += ["", f"Machine: {p['machine']['cpu_model']}, {p['machine']['cpu_count']} cores.", ""]
    if "folder" in data:
        f = data["folder"]
        lines += ["## Folder larger than the memory budget", "",
                  "| images | shape | uint8 size | peak RSS | images/s (1 epoch) | wall (decode + train + encode) |",
                  "|---|---|---|---|---|---|",
                  f"| {f['images']:,} | {'x'.join(map(str, f['shape']))} | {f['uint8_gib']} GiB | "
                  f"{f['peak_rss_mib']} MiB | {f['images_per_s']:.0f} | {f['wall_s']} s |", "",
                  f"Command: `python {f['command']}`", ""]
    (results / "scale.md").write_text("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="part", required=True)
    p = sub.add_parser("procs", help="images/s with 1 and 2 torchrun processes")
    p.add_argument("--dataset", default="MNIST")
    p.add_argument("--arch", default="dcec-l2")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--nprocs", type=int, nargs="+", default=[1, 2])
    p.add_argument("--device", default="cpu")
    p.add_argument("--workdir", default=str(REPO / "bench" / "work"), help="where the runs' outputs go")
    p.add_argument("--results", default=str(RESULTS),
                   help="where scale.json/.md are written (merged; another folder keeps a GPU run apart)")
    f = sub.add_parser("folder", help="a generated folder dataset, one epoch, peak RSS")
    f.add_argument("--images", type=int, default=200_000)
    f.add_argument("--size", type=int, default=64)
    f.add_argument("--workdir", default=str(REPO / "bench" / "work" / "folder"))
    args = ap.parse_args()
    result = procs(args) if args.part == "procs" else folder(args)
    write(args.part, result, Path(getattr(args, "results", RESULTS)))


if __name__ == "__main__":
    main()
