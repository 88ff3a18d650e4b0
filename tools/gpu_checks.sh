#!/usr/bin/env bash
# The GPU figures of the README's GPU section, in one call on a single-GPU machine with this repo's dependencies:
#   1. the whole default `experiments.pretrain` with no device argument (wall time), and again with the video stage
#      compiled (TORCH_LOGS=recompiles);
#   2. `experiments.plan` with mpc and hierarchical on that checkpoint (ms per action on the GPU);
#   3. `experiments.benchmark sections=[pretrain]` for model=base (batch BATCH) and model=large (LARGE_BATCH), bf16,
#      eager and compiled: clips/s, MFU, the compiled first step; a profile of base's eager step (top CUDA kernels).
# Every step has its own time limit and the whole script a deadline (BUDGET seconds), so a slow step costs only
# the steps after it. Output: OUT/log.txt (timings), OUT/<step>.txt (each command's output), OUT/*.json.
# Usage: OUT=DIR BUDGET=540 bash tools/gpu_checks.sh        QUICK=1 DEVICE=cpu: a dry run of the script, small counts
#        ONLY="bench_large_eager bench_large_compiled" ...    only the named steps (a second call after a deadline)
set -uo pipefail
OUT=${OUT:-gpu_out}
PY=${PY:-python3}
BUDGET=${BUDGET:-540}
BATCH=${BATCH:-64}
LARGE_BATCH=${LARGE_BATCH:-32}  # ViT-L at 64 clips of 16x224^2 would need about 115 GB of activations
QUICK=${QUICK:-0}
DEVICE=${DEVICE:-}  # empty: each command's default (auto); cpu for the dry run
ONLY=${ONLY:-}  # empty: every step
export MUJOCO_GL=egl PYTHONUNBUFFERED=1
mkdir -p "$OUT"
DEADLINE=$(($(date +%s) + BUDGET))
log() { echo "[$(date +%T)] $*" | tee -a "$OUT/log.txt"; }

wanted() { [ -z "$ONLY" ] || [[ " $ONLY " == *" $1 "* ]]; }

# step NAME LIMIT_S CMD...: run CMD under min(LIMIT_S, time to the deadline), output to OUT/NAME.txt
step() {
  local name=$1 limit=$2; shift 2
  wanted "$name" || return 1
  local left=$((DEADLINE - $(date +%s)))
  if [ "$left" -lt 20 ]; then log "skip $name (deadline)"; return 1; fi
  [ "$left" -lt "$limit" ] && limit=$left
  local start; start=$(date +%s%N)
  timeout "$limit" "$@" >"$OUT/$name.txt" 2>&1
  local rc=$?
  log "$name: exit $rc, $((($(date +%s%N) - start) / 1000000)) ms wall (limit $limit s)"
  tail -n 4 "$OUT/$name.txt" | tr '\r' '\n' | tail -n 4
  return $rc
}

dev=()
[ -n "$DEVICE" ] && dev=("device=$DEVICE")
if [ "$QUICK" = 1 ]; then
  small_model=(model.image_size=32 model.frames=4 model.width=32 model.depth=1 model.heads=2 model.pred_width=16
               model.pred_depth=1 model.pred_heads=2 env.image_size=32)
  pretrain_small=("${small_model[@]}" data.episodes=4 data.episode_steps=16 video.batch_size=4 video.steps=2
                  dynamics.steps=5 hierarchy.steps=5 metric.steps=5 dynamics.batch_size=8 hierarchy.batch_size=8)
  bench_small=(pretrain.steps=2 pretrain.warmup=1 data.episodes=2 loader.batches=2 model.depth=1 model.frames=4
               model.image_size=32 model.pred_depth=1)
  BATCH=4 LARGE_BATCH=4
else
  pretrain_small=()
  bench_small=(pretrain.steps=10 pretrain.warmup=3 data.episodes=8 loader.batches=5)
fi

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | tee -a "$OUT/log.txt" || true
$PY -c "import torch, mujoco; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'mujoco', mujoco.__version__)" \
  | tee -a "$OUT/log.txt"

RUN=runs/gpu/default
wanted default_pretrain && rm -rf "$RUN"  # a run directory left from before would resume, not start afresh
step default_pretrain 240 $PY -m experiments.pretrain "${dev[@]}" "${pretrain_small[@]}" \
  hydra.run.dir=$RUN
$PY - "$RUN" <<'EOF' | tee -a "$OUT/log.txt"
import json, sys
from pathlib import Path
path = Path(sys.argv[1]) / "summary.json"
if path.is_file():
    s = json.loads(path.read_text())
    v = s.get("video", {})
    print("video:", {k: v.get(k) for k in ("device", "compiled", "steps", "step_time_s", "first_step_s", "mfu",
                                            "wall_s", "data_wait_fraction") if k in v})
EOF
cp "$RUN/summary.json" "$OUT/default_summary.json" 2>/dev/null

plan_small=()
[ "$QUICK" = 1 ] && plan_small=(agent.params.samples=64 max_steps=3 env.image_size=32)
for agent in mpc hierarchical; do
  step "plan_$agent" 90 $PY -m experiments.plan env=pointmass_tworooms agent=$agent checkpoint=$RUN episodes=10 \
    "${dev[@]}" "${plan_small[@]}" hydra.run.dir=runs/gpu/plan_$agent
done
# the same run with the video stage compiled: what compilation costs and saves over the default's 600 steps
wanted default_pretrain_compiled && rm -rf runs/gpu/default_compiled
TORCH_LOGS=recompiles step default_pretrain_compiled 240 $PY -m experiments.pretrain "${dev[@]}" \
  "${pretrain_small[@]}" video.compile=true hydra.run.dir=runs/gpu/default_compiled
grep -c "Recompiling" "$OUT/default_pretrain_compiled.txt" 2>/dev/null | sed 's/^/recompilations logged: /' \
  | tee -a "$OUT/log.txt"

bench() {  # bench NAME LIMIT MODEL COMPILE BATCH
  step "bench_$1" "$2" $PY -m experiments.benchmark sections=[pretrain] "${dev[@]}" model="$3" \
    pretrain.batch_size="$5" pretrain.compile="$4" data.num_workers=8 "${bench_small[@]}" hydra.run.dir=runs/gpu/bench_$1 \
    && cp runs/gpu/bench_$1/benchmark.json "$OUT/bench_$1.json"
}
bench base_eager 90 base false $BATCH
step profile_base 90 $PY - "${DEVICE:-cuda}" "$BATCH" "$QUICK" <<'EOF'
import sys
import torch
from worldmodel.models import get_preset
from worldmodel.models.jepa import VJEPA
from worldmodel.models.masks import MultiBlockMaskCollator
from worldmodel.training.video_stage import autocast_for, to_device
device, batch_size, quick = torch.device(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
cfg = get_preset("base", **(dict(depth=1, frames=4, image_size=32, pred_depth=1) if quick else {}))
collate = MultiBlockMaskCollator(cfg.grid, seed=0)
items = [{"clip": torch.randn(3, cfg.frames, cfg.image_size, cfg.image_size), "position": i} for i in range(batch_size)]
batch = to_device(collate(items), device)
model = VJEPA(cfg).to(device)
opt = torch.optim.AdamW(model.param_groups(0.04), lr=1e-4)
def train_step():
    with autocast_for("auto", device):
        loss, _ = model(batch)
    opt.zero_grad(set_to_none=True); loss.backward(); opt.step(); model.ema_update(0.996)
for _ in range(3):
    train_step()
activities = [torch.profiler.ProfilerActivity.CPU] + ([torch.profiler.ProfilerActivity.CUDA] if device.type == "cuda" else [])
with torch.profiler.profile(activities=activities) as prof:
    for _ in range(3):
        train_step()
    if device.type == "cuda":
        torch.cuda.synchronize()
key = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
print(prof.key_averages().table(sort_by=key, row_limit=30, max_name_column_width=60))
EOF
bench large_eager 90 large false $LARGE_BATCH
bench base_compiled 240 base true $BATCH
bench large_compiled 240 large true $LARGE_BATCH
log "done"
