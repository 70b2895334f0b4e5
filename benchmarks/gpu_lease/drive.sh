#!/bin/bash
# Runs on the lent machine, detached (setsid), from the checkout: a speed probe, then the two stages of the
# bundled face model with epochs sized to the time given (T1, T2 seconds of training), writing logs to /root.
#   REPO=$PWD setsid nohup bash benchmarks/gpu_lease/drive.sh > /root/drive.log 2>&1 < /dev/null &
# Stage 2 waits for ../shared/.stage2_ready (touched once the last chunk is unpacked). S1_SET / S2_SET: extra
# arguments for the stages' `singleshot train` (e.g. S1_SET="--set model.weights=W --set train.lr=0.04" restarts
# stage 1 from earlier weights).
echo $$ > /root/drive.pid
cd "$REPO" || exit 1
set -x
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
T1=${T1:-660}; T2=${T2:-240}
median_speed() {  # median images/s of a run's train_log.csv rows, skipping the first $2
  python3 -c "
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))[int(sys.argv[2]):]
print(statistics.median(float(r['img_per_s']) for r in rows))" "$1" "$2"
}
python3 -m singleshot train configs/face_slim_long.yaml --no-progress --out-dir /root/probe \
  --set train.max_iters=120 --set train.log_every=25 > /root/probe.log 2>&1 || { echo PROBE FAILED; exit 1; }
speed=$(median_speed /root/probe/train_log.csv 2)
e1=$(python3 -c "print(max(30, min(400, int($T1 * $speed / 3849))))")
echo "probe speed $speed img/s -> stage 1 epochs $e1"
python3 -m singleshot train configs/face_slim_long.yaml --no-progress --set train.epochs=$e1 $S1_SET \
  > /root/s1.log 2>&1 || { echo S1 FAILED; exit 1; }
python3 -m singleshot export --weights runs/face_slim_long/last.pt -o checkpoints/face_slim_long_stage1.pt
while [ ! -f ../shared/.stage2_ready ]; do sleep 2; done
speed1=$(median_speed runs/face_slim_long/train_log.csv 10)
e2=$(python3 -c "print(max(20, min(120, int($T2 * $speed1 / 4849))))")
echo "stage 1 speed $speed1 img/s -> stage 2 epochs $e2"
python3 -m singleshot train configs/face_slim_long_finetune.yaml --no-progress --set train.epochs=$e2 $S2_SET \
  > /root/s2.log 2>&1 || { echo S2 FAILED; exit 1; }
touch /root/done
