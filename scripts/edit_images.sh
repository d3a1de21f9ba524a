#!/usr/bin/env bash
# Regenerates the editing examples in docs/images/edit-*.png (docs/editing.md) from the shipped models. The mask,
# docs/images/edit-mask.png (32x32, right half white: repaint), is an input and is not rewritten, nor is
# docs/images/edit-complete-rows.png (32x32, bottom half white), which only pictures --rows 4 of 8. Every output is
# deterministic, and each carries metadata that 'pictor verify OUT --source SRC [--mask MASK]' regenerates.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"   # relative model paths: the PNG metadata records --model as given
img=docs/images
p() { ./pictor "$@" >/dev/null; }
p generate "a red square left of a blue circle" --model models/shapes --seed 3 --out "$img/edit-source.png"
p inpaint "$img/edit-source.png" --mask "$img/edit-mask.png" --prompt "a red square left of a green triangle" \
  --model models/shapes --seed 1 --out "$img/edit-inpaint.png"
p edit "$img/edit-source.png" --prompt "a yellow square left of a blue circle" --strength 0.6 --model models/shapes \
  --seed 1 --out "$img/edit-img2img.png"
if [ -d models/emoji-dalle ]; then
  p generate "red apple, noto style" --model models/emoji-dalle --top-k 64 --seed 2 --out "$img/edit-complete-source.png"
  p complete "$img/edit-complete-source.png" --rows 4 --prompt "green apple, noto style" --model models/emoji-dalle \
    --top-k 64 --seed 5 --out "$img/edit-complete.png"
fi
