"""PyTorch twin of emofuse's fusion model training step for `emofuse bench train` (beside the product, never in
its runtime path). torch only.

Usage: python3 fusion_twin.py <job-dir> --serve   (`bench train` runs it so; its rounds interleave this twin with
our backends)
<job-dir>/job.json           {config, adamw, shape {B, Tt, Ta, Ct, Ca}, sets, validate_b}
<job-dir>/init.safetensors   the TS model's initial parameters by name (F32; FusionModel.create(...).readState())
<job-dir>/<field>-<set>.f32  text [B,Tt,Ct], text_mask [B,Tt], audio [B,Ta,Ca], audio_mask [B,Ta], labels [B]
<job-dir>/class_weights.f32  [K_cls]
Writes <job-dir>/out-0.f32 (the first two losses of a fresh model on the first validate_b utterances of set 0,
validated by the bench against the float64 CPU backend), then prints one line `ready <json: torch, threads,
device>` and answers each stdin line `run <k>` with one full-batch step on input set k % sets, then one line
`done <ms>` (its own perf_counter time; the bench times the request itself); a bad request or a non-finite loss
answers `error <why>` and exits 1. EOF on stdin ends it. $EMOFUSE_TORCH_DEVICE=cuda (scripts/gpu-check.sh sets
it when torch.cuda.is_available()) runs the twin on the GPU; default cpu.
One run = forward + backward + grad-norm clip + AdamW step + loss.item() (on CUDA also a synchronize) on the
full batch, from a fresh copy of the initial weights (a fresh model after validation).

The computation is packages/model/src/fusion/model.ts's 'cross-self' fusion, line for line:
  t0 = text @ Wt + bt (the bias is the modality embedding); a0 = audio @ Wa + ba + pos
  t1 = block(t0 <- a0, audio mask); a1 = block(a0 <- t0, text mask)   (post-LN: y = LN2(h1 + FFN(h1)),
  h1 = LN1(xq + MHA(xq, xkv)), FFN = ff2(gelu_tanh(ff1(.))), scale 1/sqrt(D), masked keys dropped)
  x = self blocks over concat(t1, a1) with the concatenated mask; pooled = masked mean over time
  logits = pooled @ Wc + bc (+ stats @ W_skip with config.linearSkip: stats = [mean, population std] over the kept
  tokens of text, then of audio, as the inputs come: the bench sets no input standardization);
  loss = class-weighted cross-entropy mean (PyTorch's)
  AdamW (decoupled decay on matrices only, not on biases, layer-norm parameters or audio.pos), gradients
  clipped to maxGradNorm by their global norm first (clip_grad_norm_: coefficient min(1, max / (norm + 1e-6))).
Dropout must be 0 (the bench sets it so).
"""
import json
import math
import os
import struct
import sys
import time

import torch
import torch.nn.functional as F


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n].decode("utf-8"))
    base = 8 + n
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        if t["dtype"] != "F32":
            raise SystemExit(f"fusion_twin.py: tensor {name!r} is {t['dtype']}, expected F32")
        a, b = t["data_offsets"]
        buf = bytearray(raw[base + a : base + b])
        out[name] = torch.frombuffer(buf, dtype=torch.float32).reshape(t["shape"]) if b > a else torch.zeros(t["shape"])
    return out


def read_f32(path, shape):
    with open(path, "rb") as f:
        buf = bytearray(f.read())
    return torch.frombuffer(buf, dtype=torch.float32).reshape(shape)


def mean_std(x, mask):
    """[mean, population std] over the kept tokens of x [B, T, C] -> [B, 2C] (no gradient: the inputs are constants)."""
    with torch.no_grad():
        m = mask.unsqueeze(-1)
        n = mask.sum(1, keepdim=True).clamp(min=1)
        mean = (x * m).sum(1) / n
        var = (((x - mean.unsqueeze(1)) ** 2) * m).sum(1) / n
        return torch.cat([mean, var.sqrt()], dim=1)


class Twin:
    def __init__(self, init, cfg):
        if cfg["fusion"] != "cross-self":
            raise SystemExit(f"fusion_twin.py: only the cross-self fusion is built, got {cfg['fusion']!r}")
        if cfg["dropout"] != 0:
            raise SystemExit("fusion_twin.py: dropout must be 0")
        self.cfg = cfg
        self.H = cfg["heads"]
        self.layers = cfg["layers"]
        # fresh leaf tensors, copies of the initial weights
        self.p = {k: v.clone().requires_grad_(True) for k, v in init.items()}

    def linear(self, name, x, gelu=False):
        y = torch.addmm(self.p[f"{name}.b"], x.reshape(-1, x.shape[-1]), self.p[f"{name}.w"]).reshape(*x.shape[:-1], -1)
        return F.gelu(y, approximate="tanh") if gelu else y

    def block(self, name, xq, xkv, mask):
        B, Tq, C = xq.shape
        Tk = xkv.shape[1]
        H = self.H
        D = C // H
        q = self.linear(f"{name}.q", xq).view(B, Tq, H, D).transpose(1, 2)  # [B, H, Tq, D]
        k = self.linear(f"{name}.k", xkv).view(B, Tk, H, D).transpose(1, 2)  # [B, H, Tk, D]
        v = self.linear(f"{name}.v", xkv).view(B, Tk, H, D).transpose(1, 2)
        keep = (mask != 0).view(B, 1, 1, Tk)  # padded keys dropped (every row keeps at least one key here)
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=keep).transpose(1, 2).reshape(B, Tq, C)
        o = self.linear(f"{name}.o", att)
        h1 = F.layer_norm(xq + o, (C,), self.p[f"{name}.ln1.g"], self.p[f"{name}.ln1.b"], eps=1e-5)
        f2 = self.linear(f"{name}.ff2", self.linear(f"{name}.ff1", h1, gelu=True))
        return F.layer_norm(h1 + f2, (C,), self.p[f"{name}.ln2.g"], self.p[f"{name}.ln2.b"], eps=1e-5)

    def loss(self, text, text_mask, audio, audio_mask, labels, class_weights):
        t0 = self.linear("text.proj", text)  # [B, Tt, C]
        a0 = self.linear("audio.proj", audio) + self.p["audio.pos"]  # [B, Ta, C]
        t1 = self.block("cross.text_from_audio", t0, a0, audio_mask)
        a1 = self.block("cross.audio_from_text", a0, t0, text_mask)
        x = torch.cat([t1, a1], dim=1)  # [B, T, C]
        mask = torch.cat([text_mask, audio_mask], dim=1)  # [B, T]
        for l in range(self.layers):
            x = self.block(f"self.{l}", x, x, mask)
        m = mask.unsqueeze(-1)
        pooled = (x * m).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)  # [B, C]
        logits = self.linear("classifier", pooled)  # [B, K_cls]
        if self.cfg.get("linearSkip"):
            stats = torch.cat([mean_std(text, text_mask), mean_std(audio, audio_mask)], dim=1)  # [B, 2 Ct + 2 Ca], constants
            logits = logits + stats @ self.p["skip.w"]
        return F.cross_entropy(logits, labels, weight=class_weights, reduction="mean", ignore_index=-1)


def make_optimizer(twin, o):
    # model.ts: decay = shape.length > 1 && !name.endsWith('pos')
    decay = [p for n, p in twin.p.items() if p.dim() > 1 and not n.endswith("pos")]
    rest = [p for n, p in twin.p.items() if not (p.dim() > 1 and not n.endswith("pos"))]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": o["weightDecay"]}, {"params": rest, "weight_decay": 0.0}],
        lr=o["lr"], betas=(o["beta1"], o["beta2"]), eps=o["eps"],
    )


def train_step(twin, opt, o, inputs):
    opt.zero_grad(set_to_none=True)
    loss = twin.loss(*inputs)
    loss.backward()
    if o["maxGradNorm"] > 0:
        torch.nn.utils.clip_grad_norm_(list(twin.p.values()), o["maxGradNorm"])
    opt.step()
    return loss.item()


def step(twin, opt, o, inputs, device):
    loss = train_step(twin, opt, o, inputs)
    if device.type == "cuda":
        torch.cuda.synchronize(device)  # loss.item() waited for the loss; the AdamW update is queued after it
    return loss


def main():
    if len(sys.argv) != 3 or sys.argv[2] != "--serve":
        raise SystemExit("usage: fusion_twin.py <job-dir> --serve")
    job_dir = sys.argv[1]
    torch.set_num_threads(2)
    with open(os.path.join(job_dir, "job.json")) as f:
        job = json.load(f)
    cfg, o, s = job["config"], job["adamw"], job["shape"]
    B, Tt, Ta, Ct, Ca = (s[k] for k in ("B", "Tt", "Ta", "Ct", "Ca"))
    device = torch.device(os.environ.get("EMOFUSE_TORCH_DEVICE") or "cpu")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("fusion_twin.py: EMOFUSE_TORCH_DEVICE=cuda, but torch.cuda.is_available() is False")
    init = {k: v.to(device) for k, v in read_safetensors(os.path.join(job_dir, "init.safetensors")).items()}
    cw = read_f32(os.path.join(job_dir, "class_weights.f32"), [cfg["numClasses"]]).to(device)

    def load_set(i):
        r = lambda name, shape: read_f32(os.path.join(job_dir, f"{name}-{i}.f32"), shape).to(device)
        return (
            r("text", [B, Tt, Ct]), r("text_mask", [B, Tt]), r("audio", [B, Ta, Ca]), r("audio_mask", [B, Ta]),
            r("labels", [B]).round().long(), cw,
        )

    sets = [load_set(i) for i in range(job["sets"])]

    # validation: a fresh model's first two losses on the first validate_b utterances of set 0
    vb = min(job["validate_b"], B)
    vin = tuple(t[:vb] for t in sets[0][:5]) + (cw,)
    twin = Twin(init, cfg)
    opt = make_optimizer(twin, o)
    losses = [train_step(twin, opt, o, vin) for _ in range(2)]
    with open(os.path.join(job_dir, "out-0.f32"), "wb") as f:
        f.write(struct.pack("<2f", *losses))

    # timing: a fresh model from the same weights, full batch
    twin = Twin(init, cfg)
    opt = make_optimizer(twin, o)
    info = {"torch": torch.__version__, "threads": torch.get_num_threads(), "validation_losses": losses,
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"}
    print("ready " + json.dumps(info), flush=True)
    for line in sys.stdin:
        req = line.split()
        if len(req) != 2 or req[0] != "run" or not req[1].isdigit():
            print(f"error bad request {line.strip()!r}: expected 'run <set>'", flush=True)
            sys.exit(1)
        t0 = time.perf_counter()
        loss = step(twin, opt, o, sets[int(req[1]) % len(sets)], device)
        ms = (time.perf_counter() - t0) * 1000.0
        if not math.isfinite(loss):
            print(f"error loss {loss} on set {req[1]}", flush=True)
            sys.exit(1)
        print(f"done {ms:.3f}", flush=True)


if __name__ == "__main__":
    main()
