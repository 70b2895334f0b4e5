#!/bin/bash
# Runs on the lent machine from the checkout: waits up to $1 s for drive.sh to finish (or die), then puts the
# checkpoints and logs in $OUT (the device tool brings them back) and prints where the runs stand.
deadline=$(( $(date +%s) + ${1:-540} ))
while [ "$(date +%s)" -lt $deadline ] && [ ! -f /root/done ] && kill -0 "$(cat /root/drive.pid)" 2>/dev/null; do
  sleep 5
done
for f in runs/face_slim_long*/last.pt runs/face_slim_long*_ft/best.pt; do  # both stages' (v2: face_slim_long, v3: face_slim_long2)
  [ -f "$f" ] && cp "$f" "$OUT/$(echo "$f" | tr / _)"
done
tar czf "$OUT/logs.tgz" /root/*.log /root/probe/train_log.csv runs/face_slim_long*/*.csv runs/face_slim_long*/config.yaml 2>/dev/null
date; [ -f /root/done ] && echo DONE
kill -0 "$(cat /root/drive.pid)" 2>/dev/null && echo DRIVER RUNNING || echo DRIVER STOPPED
grep -a "speed\|FAILED" /root/drive.log
for f in /root/s1.log /root/s2.log; do [ -f $f ] && { echo "== $f"; tr '\r' '\n' < $f | grep -a "val AP\|Error\|error" | tail -8; }; done
tail -1 runs/face_slim_long*/train_log.csv 2>/dev/null
