// AdamW, in place over a flat parameter buffer (PyTorch's torch.optim.AdamW, amsgrad=False, maximize=False):
//   s      = grad_scale * (max_norm > 0 ? min(1, max_norm / (grad_norm[0] + 1e-6)) : 1)   (clip_grad_norm_'s coef)
//   g      = s * grads[i]
//   p      = p * (1 - lr * weight_decay)                                                   (decoupled weight decay)
//   m      = beta1 * m + (1 - beta1) * g
//   v      = beta2 * v + (1 - beta2) * g^2
//   p      = p - (lr / bias_correction1) * m / (sqrt(v) / sqrt(bias_correction2) + eps)
// bias_correction{1,2} = 1 - beta{1,2}^step are computed on the CPU in float64 and passed in: an f32 pow in the
// shader would lose most digits of 1 - 0.999^step to cancellation at small steps.
// grad_norm: [1], the global L2 norm written by grad-norm.final.wgsl, read only when max_norm > 0 (so clipping
// needs no readback; otherwise the wrapper binds `g` in its place). g: [n] read; p, m, v: [n] read_write.
// One invocation per element (n need not be a multiple of anything); 1-D grid that the runtime may fold.

struct Params {
  n: u32,
  lr: f32,
  beta1: f32,
  beta2: f32,
  eps: f32,
  weight_decay: f32,
  bias_correction1: f32,
  bias_correction2: f32,
  grad_scale: f32,
  max_norm: f32,
}

@group(0) @binding(0) var<storage, read> g: array<f32>;
@group(0) @binding(1) var<storage, read> grad_norm: array<f32>;
@group(0) @binding(2) var<storage, read_write> p: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;
@group(0) @binding(5) var<uniform> params: Params;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  if (i >= params.n) { return; }
  var s = params.grad_scale;
  if (params.max_norm > 0.0) { s = s * min(1.0, params.max_norm / (grad_norm[0] + 1e-6)); }
  let gi = g[i] * s;
  let mi = params.beta1 * m[i] + (1.0 - params.beta1) * gi;
  let vi = params.beta2 * v[i] + (1.0 - params.beta2) * gi * gi;
  let denom = sqrt(vi) / sqrt(params.bias_correction2) + params.eps;
  let pi = p[i] * (1.0 - params.lr * params.weight_decay);
  p[i] = pi - (params.lr / params.bias_correction1) * mi / denom;
  m[i] = mi;
  v[i] = vi;
}
