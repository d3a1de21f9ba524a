#!/usr/bin/env bash
# The DALL-E issue's comparison: the shipped emoji models, diffusion and DALL-E, on the same 100 val prompts, scored by
# the shipped CLIP (CLIP score, R-precision among 100, FD in CLIP features, seconds per image), each without and with
# reranking (best of RERANK by the same CLIP):
#   bash bench/emoji_compare.sh [RERANK]      (default 8; needs data/emoji: ./pictor data emoji --out data/emoji)
# DIFFUSION, DALLE, UNCLIP, CLIP, DATA (default data/emoji) and IMAGES (default 100) in the environment point it at
# other models, another val set or fewer prompts; the unCLIP rows run when UNCLIP (or models/emoji-unclip) exists.
# Prints one markdown row per configuration.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rerank="${1:-8}"
clip="${CLIP:-$root/models/emoji-clip}"; data="${DATA:-$root/data/emoji}"; images="${IMAGES:-100}"
[ -d "$data/val" ] || { echo "no $data/val: make the emoji set first with ./pictor data emoji --out data/emoji" >&2; exit 1; }
echo "| model | sampling | rerank | CLIP score | R-precision | FD (CLIP features) | seconds per image | real val: CLIP score / R-precision |"
echo "|---|---|---|---|---|---|---|---|"
row() {  # NAME SAMPLING RERANK ARGS...
  local name="$1" sampling="$2" rr="$3"; shift 3
  local rep; rep="$(mktemp)"
  "$root/pictor" eval clip --clip "$clip" --data "$data" --images "$images" --rerank "$rr" --report "$rep" "$@" >/dev/null 2>&1
  /usr/bin/python3 -c "
import json
r=json.load(open('$rep'))
print('| $name | $sampling | $rr | %.2f | %.3f | %.4f | %.3f | %.2f / %.3f |' % (r['clip_score'], r['r_precision'], r['fd_clip'], r['seconds_per_image'], r['real_clip_score'], r['real_r_precision']))"
  rm -f "$rep"
}
for rr in 1 "$rerank"; do
  row "emoji (diffusion)" "DPM-Solver++ 20 steps, CFG 3" "$rr" --model "${DIFFUSION:-$root/models/emoji}" --sampler dpm++ --steps 20 --cfg 3
  row "emoji-dalle" "temperature 1, top-k 64, CFG 3" "$rr" --model "${DALLE:-$root/models/emoji-dalle}" --temperature 1 --top-k 64 --cfg 3
  unclip="${UNCLIP:-$root/models/emoji-unclip}"
  if [ -d "$unclip" ]; then
    row "emoji-unclip" "prior + decoder, DPM-Solver++ 20 steps, model's CFG" "$rr" --model "$unclip" --sampler dpm++ --steps 20
  fi
done
