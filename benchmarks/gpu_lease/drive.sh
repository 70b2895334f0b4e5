#!/bin/bash
# Runs on the lent machine, detached (setsid), from the checkout: a speed probe, then the two stages of the
# bundled face model, writing logs to /root.
#   REPO=$PWD E1=257 E2=40 setsid nohup bash benchmarks/gpu_lease/drive.sh > /root/drive.log 2>&1 < /dev/null &
# Stages: S1_CONFIG (default configs/face_slim_long2.yaml, v3's stage 1) then S2_CONFIG (default
# configs/face_slim_long2_finetune.yaml); v2's were configs/face_slim_long.yaml and configs/face_slim_long_finetune.yaml
# (S1_EXPORT=checkpoints/face_slim_long_stage1.pt with them). Epochs: E1 / E2 as given, else sized to T1 / T2
# seconds of training from the probe's speed x 0.8 (the 2026-11-22 lease's stage 1 ran at 0.79x its probe's rate).
# S1_SET / S2_SET: extra arguments for the stages' `singleshot train`.
# Stage 2 waits for ../shared/.stage2_ready (touched once the last chunk is unpacked).
echo $$ > /root/drive.pid
cd "$REPO" || exit 1
set -x
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
S1_CONFIG=${S1_CONFIG:-configs/face_slim_long2.yaml}; S2_CONFIG=${S2_CONFIG:-configs/face_slim_long2_finetune.yaml}
S1_EXPORT=${S1_EXPORT:-checkpoints/face_slim_long2_stage1.pt}
T1=${T1:-660}; T2=${T2:-240}
out_dir() { python3 -c "import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))['train']['out_dir'])" "$1"; }
median_speed() {  # median images/s of a run's train_log.csv rows, skipping the first $2
  python3 -c "
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))[int(sys.argv[2]):]
print(statistics.median(float(r['img_per_s']) for r in rows))" "$1" "$2"
}
python3 -m singleshot train "$S1_CONFIG" --no-progress --out-dir /root/probe \
  --set train.max_iters=120 --set train.log_every=25 > /root/probe.log 2>&1 || { echo PROBE FAILED; exit 1; }
speed=$(median_speed /root/probe/train_log.csv 2)
e1=${E1:-$(python3 -c "print(max(30, min(400, int($T1 * $speed * 0.8 / 3849))))")}
echo "probe speed $speed img/s -> stage 1 epochs $e1"
python3 -m singleshot train "$S1_CONFIG" --no-progress --set train.epochs=$e1 $S1_SET \
  > /root/s1.log 2>&1 || { echo S1 FAILED; exit 1; }
python3 -m singleshot export --weights "$(out_dir "$S1_CONFIG")/last.pt" -o "$S1_EXPORT"
while [ ! -f ../shared/.stage2_ready ]; do sleep 2; done
speed1=$(median_speed "$(out_dir "$S1_CONFIG")/train_log.csv" 10)
e2=${E2:-$(python3 -c "print(max(20, min(120, int($T2 * $speed1 * 0.8 / 4849))))")}
echo "stage 1 speed $speed1 img/s -> stage 2 epochs $e2"
python3 -m singleshot train "$S2_CONFIG" --no-progress --set train.epochs=$e2 --set model.weights="$S1_EXPORT" $S2_SET \
  > /root/s2.log 2>&1 || { echo S2 FAILED; exit 1; }
touch /root/done
