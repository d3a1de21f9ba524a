#!/usr/bin/env bash
# Shapes eval accuracy against sampler and steps (diffusion issue's benchmark table):
#   bash bench/eval_steps.sh [MODEL_DIR]      (default models/shapes)
# Prints one markdown row per (sampler, steps): single, pairs, counting on seen pairs, then on held-out pairs, at the
# model's default guidance scale (its config.json's default_cfg, else 3), which the CFG column shows.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
model="${1:-models/shapes}"
echo "| sampler | steps | CFG | single | pairs | counting | held-out single | held-out pairs | held-out counting | seconds |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for sampler in ddim dpm++; do
  for steps in 10 20 50; do
    rep="$(mktemp)"
    start=$(date +%s)
    "$root/pictor" eval shapes --model "$model" --sampler "$sampler" --steps "$steps" --report "$rep" >/dev/null 2>&1
    secs=$(( $(date +%s) - start ))
    /usr/bin/python3 -c "
import json,sys
r=json.load(open('$rep'))
f=lambda k: '%.3f' % r[k]
print('| $sampler | $steps | %g | ' % r['cfg_scale'] + ' | '.join(f(k) for k in ['single','pairs','counting','held_out_single','held_out_pairs','held_out_counting']) + ' | $secs |')"
    rm -f "$rep"
  done
done
