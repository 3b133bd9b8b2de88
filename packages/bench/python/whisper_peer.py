"""PyTorch peer of emofuse's `whisper` audio encoder for `emofuse bench extract` (beside the product, never in its
runtime path): the same clips, the same work, in transformers (WhisperFeatureExtractor + WhisperModel's encoder).

Usage: python3 whisper_peer.py <job-dir>
<job-dir>/job.json: {model_dir, layer, pool, threads, sets, batch, warmup, iterations}; <job-dir>/clip-<set>-<b>.f32
hold 16 kHz mono float32 clips. One timed run = feature extraction + encoder + layer crop + pooling of one set's
`batch` clips (what the TS encoder's encode() does). Writes <job-dir>/out-0.f32 (set 0's tokens, [B, T, C] padded
with zeros like emofuse's padSequences) and result.json {samples_ms, torch, transformers, threads}.
The model: <model_dir>/model.safetensors (written by scripts/convert_whisper.py beside the ONNX files).
"""
import json
import math
import os
import sys
import time

import numpy as np
import torch


def main():
    job_dir = sys.argv[1]
    with open(os.path.join(job_dir, "job.json")) as f:
        job = json.load(f)
    torch.set_num_threads(job["threads"])
    import transformers
    from transformers import WhisperFeatureExtractor, WhisperModel
    model_dir, layer, pool = job["model_dir"], job["layer"], job["pool"]
    fe = WhisperFeatureExtractor.from_pretrained(model_dir)
    encoder = WhisperModel.from_pretrained(model_dir).get_encoder().eval()
    sets = [[np.fromfile(os.path.join(job_dir, f"clip-{s}-{b}.f32"), "<f4") for b in range(job["batch"])] for s in range(job["sets"])]

    def encode(clips):  # -> list of [T_b, C] tokens
        feats = fe([c[:480000] for c in clips], sampling_rate=16000, return_tensors="pt").input_features  # [B, 80, 3000]
        with torch.no_grad():
            h = encoder(feats, output_hidden_states=True).hidden_states[layer]  # [B, 1500, C]
        out = []
        for b, c in enumerate(clips):
            frames = max(1, min(1500, math.ceil(min(len(c), 480000) / 320)))
            x = h[b, :frames]
            out.append(torch.stack([x[i:i + pool].mean(0) for i in range(0, frames, pool)]))
        return out

    for i in range(job["warmup"]):
        encode(sets[i % len(sets)])
    samples = []
    for i in range(job["iterations"]):
        t0 = time.perf_counter()
        encode(sets[i % len(sets)])
        samples.append((time.perf_counter() - t0) * 1000)
    toks = encode(sets[0])
    T, C = max(t.shape[0] for t in toks), toks[0].shape[1]
    out = np.zeros((len(toks), T, C), "<f4")
    for b, t in enumerate(toks):
        out[b, :t.shape[0]] = t.numpy()
    out.tofile(os.path.join(job_dir, "out-0.f32"))
    with open(os.path.join(job_dir, "result.json"), "w") as f:
        json.dump({"samples_ms": samples, "torch": torch.__version__, "transformers": transformers.__version__, "threads": torch.get_num_threads()}, f)


if __name__ == "__main__":
    main()
