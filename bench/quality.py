"""Clustering quality per CPU-minute: run named recipes for several seeds and tabulate ACC / NMI / ARI.

Each recipe is a list of netbuilder CLI commands (the same ones README documents); every seed runs them in a fresh
process into its own output root, so the numbers are exactly what a user gets from those commands.

    python bench/quality.py --dataset digits            # 3 seeds, about 4 minutes
    NETBUILDER_DATA=../shared/data python bench/quality.py --dataset mnist --seeds 1
    NETBUILDER_DATA=../shared/data python bench/quality.py --dataset mnist-rows --seeds 1   # the comparison table

Writes bench/results/<dataset>.json and .md (mean ± std, wall time, peak RSS, device, the exact commands).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, DEFAULT_DATA, machine_info, md_table  # noqa: E402

# name -> (dataset, arch, commands after "netbuilder"); {seed} and {out} are filled in per run.
RECIPES: dict[str, list[tuple[str, str, list[str]]]] = {
    "digits": [
        ("DIGITS", "digits-scan", ["pretrain -d DIGITS -a digits-scan", "cluster -d DIGITS -a digits-scan"]),
        ("DIGITS", "digits-dense", ["pretrain -d DIGITS -a digits-dense", "cluster -d DIGITS -a digits-dense --loss kld"]),
        ("DIGITS", "digits-dense-l2", ["pretrain -d DIGITS -a digits-dense-l2",
                                       "cluster -d DIGITS -a digits-dense-l2 --loss none --manifold umap"]),
    ],
    "mnist": [
        ("MNIST", "dcec-l2", ["pretrain -d MNIST -a dcec-l2", "cluster -d MNIST -a dcec-l2"]),
    ],
    # The auto recipe on MNIST, as a 28x28 dataset without a shipped arch gets it (issue 17's one recipe): about
    # 2,000 pretraining steps, then SCAN followed by self-labelling (70,000 images: 7,000 per cluster).
    "mnist-auto": [
        ("MNIST", "auto", ["pretrain -d MNIST -a auto", "cluster -d MNIST -a auto"]),
    ],
    # Candidate: MSE with a constant learning rate (the plain script's training) before the same UMAP step.
    "mnist-mse": [
        ("MNIST", "dcec-l2", ["pretrain -d MNIST -a dcec-l2 --recon-loss mse --schedule none",
                              "cluster -d MNIST -a dcec-l2"]),
    ],
    # The predecessor's rows (pixels, AE, AE + k-means loss, AE + KLD) with netbuilder's default MNIST arch, plus
    # netbuilder's own final step; printed beside the predecessor's and the published numbers.
    "mnist-rows": [
        ("MNIST", "dcec-l2", ["pretrain -d MNIST -a dcec-l2",
                              "cluster -d MNIST -a dcec-l2 --loss kmeans --epochs 5",
                              "cluster -d MNIST -a dcec-l2 --loss kld --epochs 5",
                              "cluster -d MNIST -a dcec-l2 --loss dkm --epochs 5",
                              "cluster -d MNIST -a dcec-l2 --loss none --manifold umap",
                              "cluster -d MNIST -a dcec-l2",
                              "metrics -d MNIST -a dcec-l2"]),
    ],
    # COIL-20's default since the 22nd stop (coil-scan: the auto recipe for 1x128x128, pooled to 32 px), with
    # UMAP + k-means on the same pretrained codes beside it.
    "coil20": [
        ("COIL20", "coil-scan", ["pretrain -d COIL20", "cluster -d COIL20 --loss none --manifold umap",
                                 "cluster -d COIL20"]),
    ],
    "coil20-conv-l2": [
        ("COIL20", "coil-conv-l2", ["pretrain -d COIL20 -a coil-conv-l2", "cluster -d COIL20 -a coil-conv-l2"]),
    ],
    # The auto recipe on small data: DIGITS and COIL-20 at 32 px, at least 1,000 pretraining steps (min_steps);
    # its clustering default for images (SCAN, cluster-scan) beside the one before the 18th stop (UMAP + k-means,
    # cluster-none) on the same pretrained codes.
    "small-auto": [
        ("DIGITS", "auto", ["pretrain -d DIGITS -a auto", "cluster -d DIGITS -a auto --loss none --manifold umap",
                            "cluster -d DIGITS -a auto"]),
        ("COIL20", "auto", ["pretrain -d COIL20 -a auto --image-size 32",
                            "cluster -d COIL20 -a auto --image-size 32 --loss none --manifold umap",
                            "cluster -d COIL20 -a auto --image-size 32"]),
    ],
    # The same for MNIST at 16 px (70,000 images; a stand-in for USPS-like small digits).
    "mnist16-auto": [
        ("MNIST", "auto", ["pretrain -d MNIST -a auto --image-size 16",
                           "cluster -d MNIST -a auto --image-size 16 --loss none --manifold umap",
                           "cluster -d MNIST -a auto --image-size 16"]),
    ],
}


def run_recipe(dataset: str, arch: str, commands: list[str], seed: int, out: Path) -> dict:
    """Run one recipe for one seed; returns the final manifests' metrics, wall time and peak RSS."""
    exe = [sys.executable, "-m", "netbuilder"]
    env = dict(os.environ)
    if "NETBUILDER_DATA" not in env and DEFAULT_DATA.exists():
        env["NETBUILDER_DATA"] = str(DEFAULT_DATA)
    t0 = time.perf_counter()
    peak = 0.0
    stages = {}
    command_s = []
    for cmd in commands:
        is_metrics = cmd.startswith("metrics")
        full = exe + cmd.split() + ["--seed", str(seed), "--out", str(out)] + (["--json"] if is_metrics else ["--no-progress"])
        t_cmd = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-f", "%M"] + full if Path("/usr/bin/time").exists() else full,
                              cwd=REPO, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"failed: {' '.join(full)}\n{proc.stderr[-2000:]}")
        try:
            peak = max(peak, int(proc.stderr.strip().splitlines()[-1]) / 1024)
        except (ValueError, IndexError):
            pass
        if is_metrics:  # the raw-pixel baseline is only in the metrics table
            for row in json.loads(proc.stdout):
                if row.get("method") == "pixels" and row.get("acc") is not None:
                    stages["pixels"] = {k: row.get(k) for k in ("acc", "nmi", "ari", "clusters")}
        command_s.append(round(time.perf_counter() - t_cmd, 1))
        print(f"  [{command_s[-1]:6.1f}s] netbuilder {cmd} --seed {seed}", flush=True)
    wall = time.perf_counter() - t0
    root = out / "saved_params" / dataset / arch
    for manifest in sorted(root.glob("*/manifest.json")):
        m = json.loads(manifest.read_text())
        stages[m["stage"]] = {k: m["metrics"].get(k) for k in ("acc", "nmi", "ari", "clusters")}
        before = ((m.get("objective") or {}).get("selflabel") or {}).get("from")
        if before:  # an objective followed by self-labelling (SCAN on large data): its clusters before it
            stages[f"{m['stage']} before self-labelling"] = before
    return {"seed": seed, "wall_s": round(wall, 1), "command_s": command_s, "peak_rss_mb": round(peak, 1),
            "stages": stages}


# Published MNIST numbers (ACC, NMI) to print beside netbuilder's rows; None = not reported.
PREDECESSOR = {"pixels": None, "pretrain": None, "cluster-kmeans": None, "cluster-kld": (0.859, None)}
PEERS = [("DEC (Xie et al. 2016)", 0.843, None), ("IDEC (Guo et al. 2017)", 0.881, None),
         ("DCEC (Guo et al. 2017)", 0.890, 0.885), ("l2 conv AE + k-means (Aytekin et al. 2018, 200 epochs)", 0.951, None),
         ("N2D (McConville et al. 2019, 1,000 epochs)", 0.979, 0.942)]
ROW_TITLES = {"pixels": "image pixels + k-means", "pretrain": "autoencoder + k-means",
              "cluster-kmeans": "autoencoder + k-means loss (5 epochs)", "cluster-kld": "autoencoder + KLD (5 epochs)",
              "cluster-dkm": "autoencoder + deep k-means (5 epochs)",
              "cluster-none": "autoencoder + UMAP + k-means (the default before the 14th stop)",
              "cluster-selflabel": "autoencoder + UMAP + k-means + self-labelling (netbuilder's default)"}


def comparison_table(runs: list[dict]) -> str:
    """The predecessor's rows measured with netbuilder, beside its reported numbers and published peers."""
    def fmt(v):
        return "–" if v is None else f"{v:.3f}"
    rows = []
    for stage, title in ROW_TITLES.items():
        pred = PREDECESSOR.get(stage)
        rows.append([title, summarise(runs, stage, "acc"), summarise(runs, stage, "nmi"),
                     f"{fmt(pred[0])} / {fmt(pred[1])}" if pred else "–"])
    for name, acc, nmi in PEERS:
        rows.append([f"*{name}* (published)", fmt(acc), fmt(nmi), ""])
    return md_table(["MNIST method", "ACC (netbuilder)", "NMI (netbuilder)", "predecessor reported ACC / NMI"], rows)


def summarise(runs: list[dict], stage: str, key: str) -> str:
    vals = [r["stages"][stage][key] for r in runs if stage in r["stages"]]
    if not vals:
        return "-"
    sd = statistics.pstdev(vals) if len(vals) > 1 else 0.0
    return f"{statistics.mean(vals):.3f} ± {sd:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", choices=sorted(RECIPES), default="digits")
    ap.add_argument("--seeds", type=int, default=3, help="how many seeds (default 3)")
    ap.add_argument("--first-seed", type=int, default=0, help="the first seed (default 0): seeds S..S+N-1")
    ap.add_argument("--work", default=str(REPO / "bench" / "work"), help="output root for the runs")
    ap.add_argument("--results", default=str(REPO / "bench" / "results"))
    args = ap.parse_args()
    if args.seeds < 1 or args.first_seed < 0:
        ap.error("--seeds must be at least 1 and --first-seed at least 0")
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    results = {"machine": machine_info(), "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]), "recipes": []}
    rows = []
    several_datasets = len({dataset for dataset, _, _ in RECIPES[args.dataset]}) > 1  # then rows name the dataset
    for dataset, arch, commands in RECIPES[args.dataset]:
        print(f"{dataset} / {arch}", flush=True)
        runs = [run_recipe(dataset, arch, commands, s, Path(args.work) / f"{arch}-seed{s}") for s in seeds]
        results["recipes"].append({"dataset": dataset, "arch": arch, "commands": commands, "runs": runs})
        for stage in sorted({st for r in runs for st in r["stages"]}, key=lambda s: (s != "pretrain", s)):
            rows.append([f"{dataset} {arch}: {stage}" if several_datasets else f"{arch}: {stage}",
                         summarise(runs, stage, "acc"), summarise(runs, stage, "nmi"),
                         summarise(runs, stage, "ari"), f"{statistics.mean(r['wall_s'] for r in runs):.0f}",
                         f"{max(r['peak_rss_mb'] for r in runs):.0f}"])
    if args.dataset == "mnist-rows":
        rows.sort(key=lambda r: list(ROW_TITLES).index(r[0].split(": ", 1)[1]) if r[0].split(": ", 1)[1] in ROW_TITLES else 99)
    table = md_table(["recipe: stage", "ACC", "NMI", "ARI", "wall s (all stages)", "peak RSS MB"], rows)
    cmds = "\n".join(f"- `{arch}`: " + " then ".join(f"`netbuilder {c} --seed S`" for c in commands)
                     for r in results["recipes"] for arch, commands in [(r["arch"], r["commands"])])
    if args.dataset == "mnist-rows":
        table += "\n\n" + comparison_table(results["recipes"][0]["runs"])
    md = (f"# Quality: {args.dataset}\n\n{table}\n\nSeeds {seeds[0]}..{seeds[-1]}; mean ± std over seeds. Commands:\n{cmds}\n\n"
          f"Machine: {results['machine'].get('cpu_model', '')}, torch {results['machine'].get('torch', '')}.\n"
          f"Reproduce: `python {results['command']}`\n")
    print(md)
    res_dir = Path(args.results)
    res_dir.mkdir(parents=True, exist_ok=True)
    (res_dir / f"{args.dataset}.json").write_text(json.dumps(results, indent=2) + "\n")
    (res_dir / f"{args.dataset}.md").write_text(md)


if __name__ == "__main__":
    main()
