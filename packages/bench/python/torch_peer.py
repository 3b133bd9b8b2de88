"""PyTorch peer for `emofuse bench` (beside the product, never in its runtime path).

Usage: python3 torch_peer.py <job-dir>
<job-dir>/job.json names the op, its shape, the warm-up and timed run counts and the number of input sets;
<job-dir>/in-<set>-<k>.f32 hold the inputs (little-endian float32, the op's input order). Writes
<job-dir>/out-<k>.f32 (outputs on input set 0, for validation against emofuse's CPU reference) and
<job-dir>/result.json {samples_ms, torch, threads, device}. Timing: time.perf_counter around each call; on
CUDA (job "device": "cuda", used by scripts/gpu-check.sh when torch.cuda.is_available()) the inputs live on the
GPU and torch.cuda.synchronize() ends each sample, so a sample is the call until its work is complete.

ops:
  attention      q [B,Tq,C], k, v [B,Tk,C] (+ dout [B,Tq,C] when pass == 'fwd+bwd') ->
                 out (fwd) or out, dq, dk, dv: torch.nn.functional.scaled_dot_product_attention per head
  matmul         a [M,K], b [K,N] -> a @ b (batch dim B if given: [B,M,K] @ [B,K,N])
  softmax        x [R,N] -> softmax(x, -1)
  layer_norm     x [R,C], gamma [C], beta [C] -> layer_norm(x, eps=1e-5)
"""
import json
import os
import sys
import time

import numpy as np
import torch


def load(job_dir, s, k, shape, device):
    a = np.fromfile(os.path.join(job_dir, f"in-{s}-{k}.f32"), dtype="<f4")
    return torch.from_numpy(a.reshape(shape)).to(device)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main():
    job_dir = sys.argv[1]
    with open(os.path.join(job_dir, "job.json")) as f:
        job = json.load(f)
    op, shape, p = job["op"], job["shape"], job["pass"]
    torch.manual_seed(0)
    device = torch.device(job.get("device", "cpu"))
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("torch_peer.py: device cuda asked for, but torch.cuda.is_available() is False")
    shapes = job["input_shapes"]
    sets = [[load(job_dir, s, k, sh, device) for k, sh in enumerate(shapes)] for s in range(job["sets"])]

    if op == "attention":
        B, Tq, Tk, H, D = (shape[x] for x in ("B", "Tq", "Tk", "H", "D"))
        F = torch.nn.functional

        def heads(x, T):  # [B, T, C] -> [B, H, T, D]
            return x.view(B, T, H, D).transpose(1, 2)

        def merge(x, T):  # [B, H, T, D] -> [B, T, C]
            return x.transpose(1, 2).reshape(B, T, H * D)

        def fn(ins):
            if p == "fwd":
                with torch.no_grad():
                    o = F.scaled_dot_product_attention(heads(ins[0], Tq), heads(ins[1], Tk), heads(ins[2], Tk))
                    return [merge(o, Tq)]
            q, k, v = (x.detach().clone().requires_grad_(True) for x in ins[:3])
            o = F.scaled_dot_product_attention(heads(q, Tq), heads(k, Tk), heads(v, Tk))
            out = merge(o, Tq)
            out.backward(ins[3])
            return [out.detach(), q.grad, k.grad, v.grad]
    elif op == "matmul":
        def fn(ins):
            with torch.no_grad():
                return [torch.matmul(ins[0], ins[1])]
    elif op == "softmax":
        def fn(ins):
            with torch.no_grad():
                return [torch.softmax(ins[0], dim=-1)]
    elif op == "layer_norm":
        def fn(ins):
            with torch.no_grad():
                C = ins[0].shape[-1]
                return [torch.nn.functional.layer_norm(ins[0], (C,), ins[1], ins[2], eps=1e-5)]
    else:
        raise SystemExit(f"torch_peer.py: unknown op {op!r}")

    outs = fn(sets[0])
    for k, o in enumerate(outs):
        o.detach().cpu().contiguous().numpy().astype("<f4").tofile(os.path.join(job_dir, f"out-{k}.f32"))
    n = 1
    for _ in range(job["warmup"]):
        fn(sets[n % len(sets)])
        n += 1
    sync(device)
    samples = []
    for _ in range(job["iterations"]):
        ins = sets[n % len(sets)]
        n += 1
        t0 = time.perf_counter()
        fn(ins)
        sync(device)
        samples.append((time.perf_counter() - t0) * 1000.0)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    with open(os.path.join(job_dir, "result.json"), "w") as f:
        json.dump({"samples_ms": samples, "torch": torch.__version__, "threads": torch.get_num_threads(), "outputs": len(outs), "device": name}, f)


if __name__ == "__main__":
    main()
