#!/usr/bin/env bash
# Push-T's GPU encoder in one device call: the video stage at the GPU setting on episodes rendered on the CPU machine
# (the GPU machine needs no gym-pusht), packed back for the t_angle probe, the levels and the plans there.
# Prepare, on the CPU machine, in the repo root (.gpu_carry/ is ignored: echo /.gpu_carry/ >> .git/info/exclude):
#   python -m experiments.pretrain env=pusht seed=1 data.episodes=2000 'stages=[video]' video.steps=0 cache_dir=DIR
#   tar -cf - -C DIR trajectories | xz -6 -T2 > .gpu_carry/pusht_s1_2000.tar.xz          (24 MB)
#   .gpu_carry/whl: cp312 wheels of mujoco, mujoco-core, glfw, pyopengl, gymnasium, farama-notifications, hydra-core,
#   omegaconf, antlr4-python3-runtime (built locally: it has no wheel); .gpu_carry/gl: the EGL loader debs
#   (/work/.library/device/README.md says how to fetch both)
# Then: device run, carry [".gpu_carry"]: OUT=$OUT bash tools/gpu_pusht_encoder.sh
# Another seed's episodes (24 MB each; one seed a call keeps the carry under its 64 MiB): carry [".gpu_carry/whl",
# ".gpu_carry/gl", "FILE"] and set SEED=S PACKED=FILE.
# Usage: OUT=DIR SEED=1 STEPS=4000 BATCH=128 EXTRA="video.lr=1.5e-4" bash tools/gpu_pusht_encoder.sh
#        SKIP_INSTALL=1 DEVICE=cpu STEPS=2 BATCH=4 ...: a dry run on this machine (no wheels, no debs)
set -euo pipefail
OUT=${OUT:-gpu_out}
SEED=${SEED:-1}
EPISODES=${EPISODES:-2000}
STEPS=${STEPS:-4000}
BATCH=${BATCH:-128}
TRAIN_SECONDS=${TRAIN_SECONDS:-450}
EXTRA=${EXTRA:-}
CARRY=${CARRY:-.gpu_carry}
CACHE=${CACHE:-/tmp/pusht_cache}
PACKED=${PACKED:-$CARRY/pusht_s${SEED}_${EPISODES}.tar.xz}
mkdir -p "$OUT" "$CACHE"
if [ "${SKIP_INSTALL:-0}" != 1 ]; then
  for f in "$CARRY"/gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    "$CARRY"/whl/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
tar -xJf "$PACKED" -C "$CACHE"
OUT=$OUT ENV_NAME=pusht EPISODES=$EPISODES STEPS=$STEPS BATCH=$BATCH TRAIN_SECONDS=$TRAIN_SECONDS CACHE_DIR=$CACHE \
  EXTRA="seed=$SEED $EXTRA" bash "$(dirname "$0")/gpu_run.sh"
grep -h -o '"narrowing_warning": [^,}]*\|"target_spread_[a-z]*": [0-9.e-]*' runs/gpu/pretrain_pusht/summary.json \
  | tee -a "$OUT/log.txt" || true
