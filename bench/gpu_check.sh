#!/usr/bin/env bash
# bench/gpu_check.sh — one prepared GPU check of netbuilder, within a fixed time budget (default 570 s).
#
# Steps (each under `timeout`; a failed or timed-out step is recorded and the next one still runs):
#   setup   pick (or create) a Python with torch and netbuilder; record torch/CUDA/GPU versions
#   tests   the device tests on the device: NETBUILDER_TEST_DEVICE=<device> pytest tests/test_train_loop.py
#           tests/test_streaming.py tests/test_anomaly_estimator.py tests/test_distributed.py
#           (the torchrun tests need 2 GPUs for NCCL and are skipped with one)
#   speed   pretrain -d MNIST -a dcec-l2, 2 epochs, without and with --amp: images/s per epoch from pretrain.jsonl
#   readme  README's MNIST run with --device <device> --amp: pretrain (20 epochs), then cluster (UMAP + k-means);
#           ACC/NMI beside README's CPU numbers (ACC 0.9731 / NMI 0.9302) and whether both agree within 0.01
#   scale   python bench/scale.py procs --device <device> (1 process; also 2 with 2 or more GPUs)
# Everything goes under one folder: $OUT if set, else bench/work/gpu-check/ (logs/, runs/, summary.txt/.json).
#
# Usage:
#   bash bench/gpu_check.sh [--device cuda] [--quick] [--data-dir DIR] [--out DIR] [--python PY] [--budget S]
#   bash bench/gpu_check.sh --device cpu --quick     # dry run on CPU: DIGITS, 1 epoch, fast tests only (~1 min)
#
# Options:
#   --device D     cuda (default), cuda:N or cpu
#   --quick        tiny version of every step (DIGITS instead of MNIST, 1 epoch, the fast test files)
#   --data-dir DIR dataset root holding mnist/ (default: $NETBUILDER_DATA, else ../shared/data next to the repo,
#                  else ./shared/data, else ./datasets); MNIST is not downloaded (the GPU machine is offline)
#   --out DIR      output folder (default: $OUT, else bench/work/gpu-check)
#   --python PY    interpreter to use (default: $NETBUILDER_PYTHON, .venv/bin/python, $VIRTUAL_ENV, python3 —
#                  the first that imports torch, and sees CUDA when the device is cuda)
#   --budget S     total seconds for all steps (default 570; 300 with --quick); step timeouts are cut to fit
#
# Environment assumption: the GPU machine has no internet. Either a Python with a CUDA build of torch 2.13.0 and
# netbuilder's dependencies is already there (or is carried with the repo as .venv/), or pip can install from a
# local wheelhouse (PIP_FIND_LINKS=DIR PIP_NO_INDEX=1). Only if no Python imports torch at all does setup create
# .venv/ with `pip install torch==2.13.0 -e .` (TORCH_INDEX_URL adds a wheel index, e.g. a CUDA one); a torch
# without CUDA for a cuda run fails setup at once (a new venv would not fix it), and the later steps say why.
# The repo's own code is always the one imported (PYTHONPATH=repo; commands run from the repo root).
set -u

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEVICE=cuda
QUICK=0
DATA_DIR=""
OUTDIR=${OUT:-}
PY=${NETBUILDER_PYTHON:-}
BUDGET=""

usage() { sed -n '2,/^set -u/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE=${2:?--device needs a value}; shift 2 ;;
    --device=*) DEVICE=${1#*=}; shift ;;
    --quick) QUICK=1; shift ;;
    --data-dir) DATA_DIR=${2:?--data-dir needs a value}; shift 2 ;;
    --data-dir=*) DATA_DIR=${1#*=}; shift ;;
    --out) OUTDIR=${2:?--out needs a value}; shift 2 ;;
    --out=*) OUTDIR=${1#*=}; shift ;;
    --python) PY=${2:?--python needs a value}; shift 2 ;;
    --python=*) PY=${1#*=}; shift ;;
    --budget) BUDGET=${2:?--budget needs a value}; shift 2 ;;
    --budget=*) BUDGET=${1#*=}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
case "$DEVICE" in cpu|cuda|cuda:[0-9]*) ;; *) echo "gpu_check.sh: --device must be cpu, cuda or cuda:N" >&2; exit 2 ;; esac
case "${BUDGET:-0}" in *[!0-9]*) echo "gpu_check.sh: --budget must be whole seconds" >&2; exit 2 ;; esac
[ -n "$BUDGET" ] || { [ "$QUICK" = 1 ] && BUDGET=300 || BUDGET=570; }

OUTDIR=${OUTDIR:-$REPO/bench/work/gpu-check}
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
LOGS=$OUTDIR/logs
RUNS=$OUTDIR/runs
rm -rf "$LOGS" "$RUNS" "$OUTDIR/scale" "$OUTDIR/tmp"
rm -f "$OUTDIR/steps.tsv" "$OUTDIR/summary.txt" "$OUTDIR/summary.json" "$OUTDIR/env.json" "$OUTDIR/tests.xml"
mkdir -p "$LOGS" "$RUNS" "$OUTDIR/tmp"

if [ -z "$DATA_DIR" ]; then
  if [ -n "${NETBUILDER_DATA:-}" ]; then DATA_DIR=$NETBUILDER_DATA
  elif [ -d "$REPO/../shared/data" ]; then DATA_DIR=$REPO/../shared/data
  elif [ -d "$REPO/shared/data" ]; then DATA_DIR=$REPO/shared/data
  else DATA_DIR=$REPO/datasets; fi
fi
[ -d "$DATA_DIR" ] && DATA_DIR=$(cd "$DATA_DIR" && pwd)

cd "$REPO" || exit 2
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
export NETBUILDER_DATA="$DATA_DIR"
export PYTHONDONTWRITEBYTECODE=1
export MPLBACKEND=Agg
if [ "$DEVICE" = cpu ]; then export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}; THREADS=(--threads "$OMP_NUM_THREADS"); else THREADS=(); fi

START=$(date +%s)
printf 'step\tstatus\trc\tseconds\ttimeout_s\tlog\n' > "$OUTDIR/steps.tsv"

# step NAME CAP_SECONDS CMD...: run CMD under timeout (CAP, cut to the budget left), log to logs/NAME.log, record it.
step() {
  local name=$1 cap=$2; shift 2
  local log=$LOGS/$name.log left t0 rc secs status
  left=$(( BUDGET - ($(date +%s) - START) ))
  [ "$cap" -gt "$left" ] && cap=$left
  if [ "$cap" -lt 5 ]; then
    printf '%s\tskipped\t-\t0\t0\t%s\n' "$name" "logs/$name.log" >> "$OUTDIR/steps.tsv"
    echo "[gpu-check] $name: skipped (time budget of ${BUDGET}s spent)" | tee "$log"
    return 0
  fi
  echo "[gpu-check] $name (timeout ${cap}s): $*"
  t0=$(date +%s.%N)
  { echo "\$ $*"; timeout -k 5 "$cap" "$@"; } > "$log" 2>&1
  rc=$?
  secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  if [ $rc -eq 0 ]; then status=ok; elif [ $rc -eq 124 ] || [ $rc -eq 137 ]; then status=timeout; else status=failed; fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$status" "$rc" "$secs" "$cap" "logs/$name.log" >> "$OUTDIR/steps.tsv"
  echo "[gpu-check] $name: $status (rc $rc, ${secs}s)"
  [ "$status" = ok ] || tail -n 8 "$log" | sed 's/^/    | /'
  return 0
}

# ---- setup: a Python that imports torch (and sees CUDA for a cuda run) ----
py_ok() {  # py_ok PY: 0 = torch (with CUDA for a cuda run) and the repo's netbuilder import; 3 = torch without CUDA
  [ -n "$1" ] && command -v "$1" >/dev/null 2>&1 || return 1
  "$1" - "$DEVICE" <<'EOF' >/dev/null 2>&1
import sys
import torch
import netbuilder  # noqa: F401  (the repo's, via PYTHONPATH)
sys.exit(0 if sys.argv[1] == "cpu" or torch.cuda.is_available() else 3)
EOF
}
setup() {
  local cand rc no_cuda=""
  for cand in "$PY" "$REPO/.venv/bin/python" "${VIRTUAL_ENV:+$VIRTUAL_ENV/bin/python}" python3 python; do
    py_ok "$cand"; rc=$?
    if [ $rc -eq 0 ]; then command -v "$cand" | tee "$OUTDIR/tmp/python"; return 0; fi
    [ $rc -eq 3 ] && no_cuda="$no_cuda $cand" && echo "torch without CUDA: $cand"
    [ $rc -eq 1 ] && [ -n "$cand" ] && echo "cannot import torch and netbuilder: $cand"
  done
  if [ -n "$no_cuda" ]; then  # a fresh venv would not fix this (and the GPU machine has no internet)
    echo "no Python with a CUDA build of torch; pass --python (or carry .venv/) with one"
    echo "${no_cuda# }" | cut -d' ' -f1 > "$OUTDIR/tmp/python"   # later steps still run (and say why they fail)
    return 1
  fi
  echo "no Python with torch found: creating $REPO/.venv (pip install torch==2.13.0 -e .)"
  python3 -m venv "$REPO/.venv" || return 1
  "$REPO/.venv/bin/pip" install -q ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"} torch==2.13.0 -e "$REPO" || return 1
  echo "$REPO/.venv/bin/python" > "$OUTDIR/tmp/python"
  py_ok "$REPO/.venv/bin/python" || { echo ".venv/bin/python cannot use --device $DEVICE"; return 1; }
}
export -f py_ok setup
export DEVICE REPO OUTDIR PY
step setup 240 bash -c setup
PY=$(cat "$OUTDIR/tmp/python" 2>/dev/null || echo "${PY:-python3}")

timeout -k 5 60 "$PY" - "$DEVICE" > "$OUTDIR/env.json" 2>> "$LOGS/setup.log" <<'EOF'
import json, os, platform, sys
info = {"python": sys.executable, "python_version": platform.python_version(), "host": platform.node(),
        "cpu_count": os.cpu_count(), "device_requested": sys.argv[1]}
try:
    import torch
    info.update(torch=torch.__version__, torch_cuda=torch.version.cuda, cuda_available=torch.cuda.is_available(),
                gpus=[torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
                if torch.cuda.is_available() else [],
                cudnn=torch.backends.cudnn.version() if torch.cuda.is_available() else None)
except Exception as e:  # recorded, not fatal: the steps will fail and say why
    info["torch_error"] = repr(e)
print(json.dumps(info, indent=1))
EOF
command -v nvidia-smi >/dev/null 2>&1 && timeout -k 5 30 nvidia-smi > "$LOGS/nvidia-smi.txt" 2>&1
NGPU=$(timeout -k 5 60 "$PY" -c 'import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)' 2>/dev/null || echo 0)

if [ "$QUICK" = 1 ]; then
  DS=DIGITS; ARCH=0; SPEED_EPOCHS=1; RUN_EPOCHS=(--epochs 1); CLU_EPOCHS=(--epochs 1)
  TESTS=(tests/test_train_loop.py tests/test_streaming.py)
  CAP_TESTS=60; CAP_SPEED=45; CAP_PRE=60; CAP_CLU=60; CAP_SCALE=60
else
  DS=MNIST; ARCH=dcec-l2; SPEED_EPOCHS=2; RUN_EPOCHS=(); CLU_EPOCHS=()
  TESTS=(tests/test_train_loop.py tests/test_streaming.py tests/test_anomaly_estimator.py tests/test_distributed.py)
  CAP_TESTS=110; CAP_SPEED=60; CAP_PRE=170; CAP_CLU=110; CAP_SCALE=60
fi
NPROCS=(1)
[ "${DEVICE%%:*}" = cuda ] && [ "$NGPU" -ge 2 ] && NPROCS=(1 2)
COMMON=(-d "$DS" -a "$ARCH" --device "$DEVICE" --data-dir "$DATA_DIR" --no-progress "${THREADS[@]}")

# ---- 1. the device tests on the device ----
step tests "$CAP_TESTS" env NETBUILDER_TEST_DEVICE="$DEVICE" "$PY" -m pytest -q -p no:cacheprovider \
  --basetemp "$OUTDIR/tmp/pytest" --junitxml "$OUTDIR/tests.xml" "${TESTS[@]}"

# ---- 2. pretrain speed without and with --amp (images/s per epoch from the jsonl log) ----
step speed-fp32 "$CAP_SPEED" "$PY" -m netbuilder pretrain "${COMMON[@]}" --epochs "$SPEED_EPOCHS" --no-amp \
  --eval-every $((SPEED_EPOCHS * 10)) --out "$RUNS/speed-fp32"
step speed-amp "$CAP_SPEED" "$PY" -m netbuilder pretrain "${COMMON[@]}" --epochs "$SPEED_EPOCHS" --amp \
  --eval-every $((SPEED_EPOCHS * 10)) --out "$RUNS/speed-amp"

# ---- 3. README's MNIST run (pretrain + cluster) with --amp ----
step readme-pretrain "$CAP_PRE" "$PY" -m netbuilder pretrain "${COMMON[@]}" "${RUN_EPOCHS[@]}" --amp --out "$RUNS/readme"
step readme-cluster "$CAP_CLU" "$PY" -m netbuilder cluster "${COMMON[@]}" "${CLU_EPOCHS[@]}" --amp --out "$RUNS/readme"

# ---- 4. bench/scale.py procs ----
step scale "$CAP_SCALE" "$PY" bench/scale.py procs --device "$DEVICE" --dataset "$DS" --arch "$ARCH" --epochs 1 \
  --nprocs "${NPROCS[@]}" --workdir "$RUNS/scale" --results "$OUTDIR/scale"

# ---- summary ----
TOTAL=$(( $(date +%s) - START ))
SUMMARY_PY=$PY
"$SUMMARY_PY" -c 'import json' 2>/dev/null || SUMMARY_PY=python3
timeout -k 5 60 "$SUMMARY_PY" - "$OUTDIR" "$DS" "$ARCH" "$DEVICE" "$QUICK" "$TOTAL" "$BUDGET" <<'EOF'
import csv, glob, json, os, sys
import xml.etree.ElementTree as ET

out, ds, arch, device, quick, total, budget = sys.argv[1:8]
quick = quick == "1"
README = {"acc": 0.9731, "nmi": 0.9302}   # README, MNIST dcec-l2 seed 0 on CPU
TOL = 0.01

def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None

def jsonl(path):
    try:
        with open(path) as f:
            return [json.loads(l) for l in f if l.strip()]
    except (OSError, ValueError):
        return []

def one(pattern):
    hits = sorted(glob.glob(os.path.join(out, pattern)), key=os.path.getmtime)
    return hits[-1] if hits else None

with open(os.path.join(out, "steps.tsv")) as f:
    steps = list(csv.DictReader(f, delimiter="\t"))
res = {"device": device, "quick": quick, "dataset": ds, "arch": arch, "budget_s": int(budget),
       "total_s": int(total), "env": load(os.path.join(out, "env.json")), "steps": steps}

tests = {}
try:
    root = ET.parse(os.path.join(out, "tests.xml")).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    n = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    tests = {**n, "passed": n["tests"] - n["failures"] - n["errors"] - n["skipped"],
             "not_passed": [c.get("classname", "") + "::" + c.get("name", "") for c in suite.iter("testcase")
                            if c.find("failure") is not None or c.find("error") is not None],
             "skipped_reasons": sorted({(s.get("message") or "")[:100] for s in suite.iter("skipped")})}
except (OSError, ET.ParseError, AttributeError):
    pass
res["tests"] = tests

speed = {}
for name in ("fp32", "amp"):
    recs = jsonl(one(f"runs/speed-{name}/logs/*/*/pretrain.jsonl") or "")
    if recs:
        speed[name] = {"images_per_s_per_epoch": [r.get("images_per_s") for r in recs],
                       "images_per_s": recs[-1].get("images_per_s"), "seconds_per_epoch": [r.get("seconds") for r in recs]}
if "fp32" in speed and "amp" in speed and speed["fp32"]["images_per_s"]:
    speed["amp_speedup"] = round(speed["amp"]["images_per_s"] / speed["fp32"]["images_per_s"], 3)
res["speed"] = speed

readme = {}
pre, clu = one("runs/readme/saved_params/*/*/pretrain/manifest.json"), one("runs/readme/saved_params/*/*/cluster-*/manifest.json")
for key, path in (("pretrain", pre), ("cluster", clu)):
    m = load(path) if path else None
    if m:
        readme[key] = {"stage": os.path.basename(os.path.dirname(path)),
                       **{k: m.get("metrics", {}).get(k) for k in ("acc", "nmi", "ari")},
                       "timings": m.get("timings"), "device": m.get("device")}
if "cluster" in readme and not quick and ds == "MNIST":
    c = readme["cluster"]
    readme["readme_cpu"] = README
    readme["agrees_within_0.01"] = all(c.get(k) is not None and abs(c[k] - v) <= TOL for k, v in README.items())
res["readme_run"] = readme

scale = load(os.path.join(out, "scale", "scale.json"))
res["scale"] = [{k: r.get(k) for k in ("processes", "device", "images_per_s", "train_s", "steps")}
                for r in (scale or {}).get("procs", {}).get("rows", [])]

with open(os.path.join(out, "summary.json"), "w") as f:
    json.dump(res, f, indent=1)

fmt = lambda v, p=4: "n/a" if v is None else (f"{v:.{p}f}" if isinstance(v, float) else str(v))
env = res["env"] or {}
L = [f"netbuilder GPU check — device {device}{' (quick dry run)' if quick else ''}, {ds} / {arch}",
     f"torch {env.get('torch', '?')} (CUDA {env.get('torch_cuda')}), GPUs: {', '.join(env.get('gpus') or []) or 'none'}; "
     f"python {env.get('python', '?')}",
     f"total {total} s of a {budget} s budget", "", "steps:"]
L += [f"  {s['step']:<16} {s['status']:<8} {s['seconds']:>7} s (timeout {s['timeout_s']} s)  {s['log']}" for s in steps]
L += ["", "1. device tests: " + (f"{tests['passed']} passed, {tests['failures'] + tests['errors']} failed, "
                                 f"{tests['skipped']} skipped" if tests else "no result")]
L += [f"     not passed: {t}" for t in tests.get("not_passed", [])]
L += [f"     skipped: {r}" for r in tests.get("skipped_reasons", []) if r]
L += ["2. pretrain images/s (per epoch, from pretrain.jsonl; the first epoch includes warm-up):"]
for name in ("fp32", "amp"):
    s = speed.get(name)
    L.append(f"     {name:<5} " + (", ".join(fmt(v, 0) for v in s["images_per_s_per_epoch"]) if s else "no result"))
if "amp_speedup" in speed:
    L.append(f"     --amp / fp32 (last epoch): x{speed['amp_speedup']:.2f}")
L.append("3. README run (pretrain + cluster, --amp):")
for key in ("pretrain", "cluster"):
    r = readme.get(key)
    L.append(f"     {key:<8} " + (f"{r['stage']}: ACC {fmt(r['acc'])}  NMI {fmt(r['nmi'])}  ARI {fmt(r['ari'])}" if r else "no result"))
if "agrees_within_0.01" in readme:
    c = readme["cluster"]
    L.append(f"     README (CPU): ACC {README['acc']:.4f}  NMI {README['nmi']:.4f}; this run: ACC {fmt(c['acc'])}  "
             f"NMI {fmt(c['nmi'])} -> {'AGREE' if readme['agrees_within_0.01'] else 'DIFFER'} within {TOL}")
elif quick:
    L.append("     (quick: DIGITS, 1 epoch — not comparable with README's MNIST numbers)")
L.append("4. bench/scale.py procs:")
L += [f"     {r['processes']} process(es) on {r['device']}: {fmt(r['images_per_s'], 0)} images/s, {r['steps']} steps"
      for r in res["scale"]] or ["     no result"]
text = "\n".join(L) + "\n"
with open(os.path.join(out, "summary.txt"), "w") as f:
    f.write(text)
print("\n" + text, end="")
EOF
echo "[gpu-check] outputs in $OUTDIR (summary.txt, summary.json, logs/)"
awk -F'\t' 'NR > 1 && $2 != "ok" { bad = 1 } END { exit bad }' "$OUTDIR/steps.tsv"
