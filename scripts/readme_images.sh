#!/usr/bin/env bash
# Regenerates the README's sample grids from the shipped models (seed 100, 4 images per prompt), so anyone can check
# they are what the models draw: every file is deterministic, so on the same thread count and GEMM backend a rerun
# leaves `git status` clean.
#   bash scripts/readme_images.sh            # all grids
#   bash scripts/readme_images.sh shapes     # one model's grids: shapes, emoji or dalle
set -euo pipefail
only="${1:-all}"
case "$only" in all|shapes|emoji|dalle) ;; *) echo "unknown model set '$only': use shapes, emoji, dalle or nothing for all" >&2; exit 2;; esac
want() { [ "$only" = all ] || [ "$only" = "$1" ]; }
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"   # relative model paths: the PNG metadata records --model as given
img=docs/images
gen() { ./pictor generate "$@" --seed 100 >/dev/null; }

shapes=("a large red circle on the left" "a small blue square at the top" "a green triangle" "two yellow circles"
        "three white squares" "a red square left of a blue circle" "a cyan circle above an orange triangle" "a large purple square")
want shapes && for i in "${!shapes[@]}"; do gen "${shapes[$i]}" --model "models/shapes" -n 4 --grid --out "$img/shapes-$i.png"; done

# models/emoji (trained on `pictor data emoji --categories "Smileys & Emotion,Animals & Nature,Food & Drink"
# --skin-tones none`, the default style split): val-set prompts, emoji the model has seen only in the other style, and
# the last two from the training set.
emoji_style=("cat face, noto style" "red apple, noto style" "grapes, noto style" "hamburger, noto style" "sushi, noto style"
       "panda, noto style" "purple heart, noto style" "unicorn, twemoji style" "face with tears of joy, noto style"
       "pile of poo, noto style" "robot, noto style" "dog face, twemoji style" "grinning cat, noto style" "blue heart, twemoji style")
want emoji && for i in "${!emoji_style[@]}"; do gen "${emoji_style[$i]}" --model "models/emoji" -n 4 --grid --out "$img/emoji-$i.png"; done

# The DALL-E models (trained on `--split emoji`): val-set emoji (held out whole from training) and the last two from
# the training set.
emoji=("cat face, noto style" "red apple, twemoji style" "grapes, noto style" "hamburger, twemoji style" "basketball, noto style"
       "panda, twemoji style" "purple heart, noto style" "rocket, twemoji style" "face with tears of joy, noto style"
       "pile of poo, twemoji style" "robot, noto style" "doughnut, twemoji style" "grinning cat, noto style" "blue heart, twemoji style")

if want dalle && [ -d "models/emoji-dalle" ]; then
  for i in "${!emoji[@]}"; do
    gen "${emoji[$i]}" --model "models/emoji-dalle" --top-k 64 -n 4 --grid --out "$img/dalle-$i.png"
    gen "${emoji[$i]}" --model "models/emoji-dalle" --top-k 64 --candidates 32 --keep 4 --clip "models/emoji-clip" --grid --out "$img/dalle-rerank-$i.png"
  done
fi
