"""Packs PngSuite's expected pixels (../shared/pngsuite/json/*.json, flat RGBA arrays) into one safetensors file,
tests/fixtures/pngsuite/expected.safetensors: NAME -> U8 [n] for 8-bit results, NAME -> I32 [n] for 16-bit ones
(NAME_to8 holds the 8-bit reduction of a 16-bit image). Also copies the PNG files and the licence.

    python3 tools/reference/pack_pngsuite.py [path/to/shared/pngsuite]
"""
import glob
import json
import os
import shutil
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import st  # noqa: E402

root = os.path.join(os.path.dirname(__file__), "..", "..")
suite = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "..", "shared", "pngsuite")
dest = os.path.join(root, "tests", "fixtures", "pngsuite")
os.makedirs(dest, exist_ok=True)
for p in glob.glob(os.path.join(suite, "png", "*.png")):
    shutil.copy(p, dest)
shutil.copy(os.path.join(suite, "LICENSE"), dest)
out = {}
for p in sorted(glob.glob(os.path.join(suite, "json", "*.json"))):
    name = os.path.basename(p)[:-5]
    if name == "README":
        continue
    a = np.array(json.load(open(p)), dtype=np.int64)
    out[name] = a.astype(np.uint8) if a.max() <= 255 and ("16" not in name or name.endswith("_to8")) else a.astype(np.int32)
st.save(os.path.join(dest, "expected.safetensors"), out, {"source": "PngSuite-2017jul19 json/, packed by tools/reference/pack_pngsuite.py"})
print(f"packed {len(out)} expected images into {os.path.normpath(dest)}")
