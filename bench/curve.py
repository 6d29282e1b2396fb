"""Time-to-accuracy curve: probe ACC/NMI (k-means on 10k codes) against cumulative training seconds, from epoch logs.

    python bench/curve.py logs/MNIST/dcec-l2/pretrain.jsonl --out bench/results/mnist-time-to-accuracy.png
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from netbuilder.fileio import write_with  # noqa: E402
from netbuilder.train.runlog import read_jsonl  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("jsonl", nargs="+", help="epoch logs (<stage>.jsonl), plotted in order on one time axis")
    ap.add_argument("--out", required=True)
    ap.add_argument("--title", default="MNIST, dcec-l2: ACC / NMI against wall time")
    args = ap.parse_args()
    from matplotlib.figure import Figure

    t, acc, nmi, xs = 0.0, [], [], []
    for path in args.jsonl:
        for r in read_jsonl(path):
            t += float(r.get("seconds", 0.0))
            if "acc" in r:
                xs.append(t / 60)
                acc.append(r["acc"])
                nmi.append(r["nmi"])
    fig = Figure(figsize=(7, 4), dpi=120)
    ax = fig.add_subplot()
    ax.plot(xs, acc, "o-", label="ACC (the stage's clusters: k-means on codes while pretraining)")
    ax.plot(xs, nmi, "s-", label="NMI")
    ax.set_xlabel("training wall time (minutes)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title(args.title.replace("\\n", "\n"), fontsize=10)
    fig.tight_layout()
    write_with(args.out, lambda tmp: fig.savefig(tmp, format="png"), suffix=".png")
    print(f"wrote {args.out} ({len(xs)} points)")


if __name__ == "__main__":
    main()
