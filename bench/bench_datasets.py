"""Load time (cold / warm) and peak memory of the real datasets.

Usage: python bench/bench_datasets.py [MNIST COIL20 ...]   (data from $NETBUILDER_DATA, default ../shared/data)

Each dataset is measured in its own fresh process so that peak RSS is that dataset's alone. "cold" is the
first load in a new process (imports included, files possibly in the OS page cache); "warm" is the best
of three further loads in the same process. Targets: MNIST under 2 s warm and under 300 MB peak RSS.
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data"
# What the real files must give (from the datasets' documentation).
EXPECTED = {
    "MNIST": {"shape": [70000, 1, 28, 28],
              "counts": [6903, 7877, 6990, 7141, 6824, 6313, 6876, 7293, 6825, 6958]},
    "COIL20": {"shape": [1440, 1, 128, 128], "counts": [72] * 20},
}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def measure(name: str) -> dict:
    """Run in the child: import, load once (cold), load three more times (warm), report."""
    import numpy as np

    t0 = time.perf_counter()
    from netbuilder.datasets import load_dataset

    t_import = time.perf_counter() - t0
    rss_import = _peak_rss_mb()
    t1 = time.perf_counter()
    ds = load_dataset(name, download=False, progress=False)
    cold = time.perf_counter() - t1
    shape, counts, fingerprint = list(ds.images.shape), np.bincount(ds.labels).tolist(), ds.fingerprint
    del ds
    warm = []
    for _ in range(3):
        t = time.perf_counter()
        ds = load_dataset(name, download=False, progress=False)
        warm.append(time.perf_counter() - t)
        del ds
    return {"name": name, "import_s": t_import, "cold_s": cold, "warm_s": min(warm), "rss_after_import_mb": rss_import,
            "peak_rss_mb": _peak_rss_mb(), "shape": shape, "counts": counts, "fingerprint": fingerprint}


def main(names: list[str]) -> int:
    env = dict(os.environ)
    env.setdefault("NETBUILDER_DATA", str(DEFAULT_DATA))
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    print(f"NETBUILDER_DATA={env['NETBUILDER_DATA']}")
    print(f"{'dataset':<8} {'shape':<20} {'import':>7} {'cold':>7} {'warm':>7} {'peak RSS':>9}  check")
    ok = True
    for name in names:
        proc = subprocess.run([sys.executable, __file__, "--child", name], env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
            print(f"{name:<8} failed: {last}")
            ok = False
            continue
        r = json.loads(proc.stdout)
        exp = EXPECTED.get(name)
        check = "-" if exp is None else ("ok" if exp == {"shape": r["shape"], "counts": r["counts"]} else "MISMATCH")
        ok &= check != "MISMATCH"
        print(f"{name:<8} {'x'.join(map(str, r['shape'])):<20} {r['import_s']:>6.2f}s {r['cold_s']:>6.2f}s "
              f"{r['warm_s']:>6.2f}s {r['peak_rss_mb']:>6.0f} MB  {check}")
        print(f"{'':<8} per-class counts {r['counts']}; fingerprint {r['fingerprint'][:16]}; "
              f"RSS after import {r['rss_after_import_mb']:.0f} MB")
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(measure(sys.argv[2])))
    else:
        sys.exit(main(sys.argv[1:] or ["MNIST", "COIL20"]))
