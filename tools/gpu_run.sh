#!/usr/bin/env bash
# The GPU figures in the README, in one call on a single-GPU machine with this repo's dependencies installed:
#   1. `experiments.benchmark` on CUDA (bf16): render frames/s, loader, pretrain step and MFU, tiny and small models;
#   2. a long `experiments.pretrain` of the video stage (tiny model, 2000 exploration episodes), its step count
#      sized from the measured step time to fit TRAIN_SECONDS;
#   3. the run directory, minus the optimiser state, packed for the CPU-side probe (`experiments.probe`).
# Usage: OUT=DIR TRAIN_SECONDS=300 bash tools/gpu_run.sh      (writes DIR/{bench_*.json,log.txt,run.tgz.part-*})
#        OUT=DIR STEPS=4000 TRAIN_SECONDS=450 bash tools/gpu_run.sh   (a fixed step count: no benchmarks, only steps 2-3)
#        ENV_NAME=pusht CACHE_DIR=DIR EXTRA="seed=1 video.lr=1.5e-4" ...   (episodes rendered elsewhere into DIR: the
#        GPU machine needs no gym-pusht; EXTRA: more pretrain overrides; docs/pusht.md, "Pretraining sizes")
set -euo pipefail
OUT=${OUT:-gpu_out}
TRAIN_SECONDS=${TRAIN_SECONDS:-300}
ENV_NAME=${ENV_NAME:-pointmass_tworooms}
PY=${PY:-python3}
DEVICE=${DEVICE:-cuda}  # cpu: a dry run of this script with small counts
EPISODES=${EPISODES:-2000}
BATCH=${BATCH:-64}
SMALL_BATCH=${SMALL_BATCH:-32}
STEPS=${STEPS:-}  # empty: sized from the benchmark's step time
CACHE_DIR=${CACHE_DIR:-}  # empty: the pretrain's default cache
EXTRA=${EXTRA:-}  # more pretrain overrides, space-separated
export MUJOCO_GL=egl PYTHONUNBUFFERED=1
mkdir -p "$OUT"
log() { echo "[$(date +%T)] $*" | tee -a "$OUT/log.txt"; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | tee -a "$OUT/log.txt" || true
$PY -c "import torch, mujoco; print('torch', torch.__version__, 'mujoco', mujoco.__version__)" | tee -a "$OUT/log.txt"

if [ -z "$STEPS" ]; then
  log "benchmark, tiny model, batch $BATCH"
  $PY -m experiments.benchmark sections=[render,pretrain] device=$DEVICE pretrain.batch_size=$BATCH pretrain.steps=30 \
    pretrain.warmup=5 data.num_workers=8 hydra.run.dir=runs/gpu/bench_tiny >>"$OUT/log.txt" 2>&1
  cp runs/gpu/bench_tiny/benchmark.json "$OUT/bench_tiny.json"
  log "benchmark, small model (224 px, 16 frames), batch $SMALL_BATCH"
  $PY -m experiments.benchmark sections=[pretrain] device=$DEVICE model=small pretrain.batch_size=$SMALL_BATCH pretrain.steps=20 \
    pretrain.warmup=5 data.num_workers=8 data.episodes=8 loader.batches=5 hydra.run.dir=runs/gpu/bench_small \
    >>"$OUT/log.txt" 2>&1 || log "small-model benchmark failed (see log.txt)"
  cp runs/gpu/bench_small/benchmark.json "$OUT/bench_small.json" 2>/dev/null || true

  # Steps that fit TRAIN_SECONDS at the measured step time, with 40% headroom for loading, logging and checkpoints.
  STEPS=$($PY -c "import json; t = json.load(open('$OUT/bench_tiny.json'))['pretrain']['step_time_s']; \
  print(max(100, min(20000, int($TRAIN_SECONDS / (1.4 * t)) // 100 * 100)))")
fi
log "pretrain: $STEPS video steps on $ENV_NAME"
RUN=runs/gpu/pretrain_$ENV_NAME
timeout $((TRAIN_SECONDS + 60)) $PY -m experiments.pretrain env=$ENV_NAME device=$DEVICE stages=[video] \
  video.steps="$STEPS" video.batch_size=$BATCH video.checkpoint_every=500 video.image_every=5000 \
  data.episodes=$EPISODES data.render_workers=12 data.num_workers=10 ${CACHE_DIR:+cache_dir=$CACHE_DIR} $EXTRA \
  hydra.run.dir=$RUN >"$OUT/pretrain_log.txt" 2>&1 \
  || log "pretrain ended early (exit $?): packing its last checkpoint"
tail -c 3000 "$OUT/pretrain_log.txt" | tr '\r' '\n' | tail -n 8

log "packing $RUN"
$PY - "$RUN" <<'EOF'
import sys
from pathlib import Path

import torch

from worldmodel.io.checkpoint import export_safetensors, latest_checkpoint

run = Path(sys.argv[1])
last = latest_checkpoint(run / "checkpoints" / "video")
state = torch.load(last, map_location="cpu", weights_only=True)
slim = {k: state[k] for k in ("step", "model", "losses", "record")}
for old in (run / "checkpoints" / "video").glob("*.pt"):
    old.unlink()
torch.save(slim, run / "checkpoints" / "video" / last.name)
if not (run / "encoder.safetensors").is_file():  # the run was cut short: export what the last checkpoint holds
    target = {k.removeprefix("target_encoder."): v for k, v in slim["model"].items() if k.startswith("target_encoder.")}
    export_safetensors(target, run / "encoder.safetensors", metadata={"record": slim["record"]})
tail = slim['losses'][-20:]
print(f"kept {last.name} (step {slim['step']}), final loss {sum(tail) / max(1, len(tail)):.4f}")
EOF
tar -czf "$OUT/run.tgz" -C runs/gpu "pretrain_$ENV_NAME"
split -b 15M "$OUT/run.tgz" "$OUT/run.tgz.part-" && rm "$OUT/run.tgz"
ls -la "$OUT"
log "done"
