"""PyTorch peer of emofuse's `whisper` audio encoder for `emofuse bench extract` (beside the product, never in its
runtime path): the same clips, the same work, in transformers (WhisperFeatureExtractor + WhisperModel's encoder).

Usage: python3 whisper_peer.py <job-dir>
<job-dir>/job.json: {model_dir, layer, pool, threads, sets, batch, warmup, iterations, window, slice_step};
<job-dir>/clip-<set>-<b>.f32 hold 16 kHz mono float32 clips. window 'full' (default): the usual transformers pipeline,
the encoder on the whole 30 s window. window 'sliced': the encoder on only each clip's mel frames, its window the
covered frames rounded up to slice_step, with HF's own WhisperEncoder.forward on a positional table cut to that window
(clips with equal windows batched), stopping after `layer` (the later layers dropped): emofuse's sliced run, done
independently in PyTorch. One timed run = feature extraction + encoder + layer crop + pooling of one set's
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


def whisper_tokens(model_dir, layer, pool, window="full", step=8):
    """encode(clips) -> per clip [T_b, C] pooled tokens of `layer` (also scripts/fixtures/whisper_sliced_reference.py)."""
    from transformers import WhisperFeatureExtractor, WhisperModel
    fe = WhisperFeatureExtractor.from_pretrained(model_dir)
    encoder = WhisperModel.from_pretrained(model_dir).get_encoder().eval()
    table = encoder.embed_positions.weight.detach().clone()  # [1500, C]
    all_layers, final_norm = encoder.layers, encoder.layer_norm
    covered = lambda c: max(1, min(1500, math.ceil(min(len(c), 480000) / 320)))

    def pooled(x, frames):  # [>= frames, C] -> [ceil(frames / pool), C]
        return torch.stack([x[i:min(i + pool, frames)].mean(0) for i in range(0, frames, pool)])

    def encode(clips):  # -> list of [T_b, C] tokens
        feats = fe([c[:480000] for c in clips], sampling_rate=16000, return_tensors="pt").input_features  # [B, 80, 3000]
        if window == "full":
            with torch.no_grad():
                h = encoder(feats, output_hidden_states=True).hidden_states[layer]  # [B, 1500, C]
            return [pooled(h[b], covered(c)) for b, c in enumerate(clips)]
        out = [None] * len(clips)
        groups = {}
        for b, c in enumerate(clips):
            groups.setdefault(min(1500, math.ceil(covered(c) / step) * step), []).append(b)
        for W, members in groups.items():
            # HF's forward checks input length == max_source_positions * 2 and adds the whole table: give it a W-row table
            encoder.config.max_source_positions = W
            encoder.embed_positions = torch.nn.Embedding(W, table.shape[1], _weight=table[:W])
            if layer < len(all_layers):  # stop after the layer asked for; the final layer norm belongs to the last layer only
                encoder.layers, encoder.layer_norm = all_layers[:layer], torch.nn.Identity()
            try:
                with torch.no_grad():
                    h = encoder(feats[members, :, :2 * W], output_hidden_states=True).hidden_states[layer]  # [G, W, C]
            finally:
                encoder.config.max_source_positions = 1500
                encoder.embed_positions = torch.nn.Embedding(1500, table.shape[1], _weight=table)
                encoder.layers, encoder.layer_norm = all_layers, final_norm
            for g, b in enumerate(members):
                out[b] = pooled(h[g], covered(clips[b]))
        return out

    return encode


def main():
    job_dir = sys.argv[1]
    with open(os.path.join(job_dir, "job.json")) as f:
        job = json.load(f)
    torch.set_num_threads(job["threads"])
    import transformers
    encode = whisper_tokens(job["model_dir"], job["layer"], job["pool"], job.get("window", "full"), job.get("slice_step", 8))
    sets = [[np.fromfile(os.path.join(job_dir, f"clip-{s}-{b}.f32"), "<f4") for b in range(job["batch"])] for s in range(job["sets"])]

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
