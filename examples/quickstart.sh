#!/usr/bin/env bash
# The README's main job: encode the example clip with the bundled default model, decode it
# back, and show what the model is. Outputs go to examples/out/ (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
audiotok encode examples/speech.wav -o examples/out --force --bitrate 6   # kbps
audiotok decode examples/out/speech.npy -o examples/out/speech.decoded.wav --force
audiotok info
python - <<'PY'
import numpy as np, soundfile as sf
codes = np.load("examples/out/speech.npy", allow_pickle=False)
a, sr_a = sf.read("examples/speech.wav")
b, sr_b = sf.read("examples/out/speech.decoded.wav")
print(f"codes {codes.shape} {codes.dtype}; input {len(a)} samples @ {sr_a} Hz -> "
      f"decoded {len(b)} samples @ {sr_b} Hz")
assert (len(a), sr_a) == (len(b), sr_b), "decoded length or rate differs from the input"
import audiotok
tok = audiotok.load("default")
low = tok.encode(a.astype(np.float32), sample_rate=sr_a, bitrate=3)  # kbps, as --bitrate
print(f"bitrates {tok.bitrates} kbps; at 3 kbps: {low.shape[1]} codebooks")
assert np.array_equal(low[0].numpy(), codes[: low.shape[1]]), "3 kbps = the first codebooks"
PY
