// GELU forward, tanh form (GPT-2 / BERT "gelu_new"):
//   y = 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))
// x, y: [n] contiguous f32. One invocation per element; 1-D grid that the runtime may fold into (x, y).

struct Params {
  n: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

override WG: u32 = 256;

const SQRT_2_OVER_PI: f32 = 0.7978845608028654;

// tanh that stays finite for large |u| (some drivers compute tanh through exp and overflow).
fn safe_tanh(u: f32) -> f32 {
  return tanh(clamp(u, -15.0, 15.0));
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  if (i >= params.n) { return; }
  let v = x[i];
  let t = safe_tanh(SQRT_2_OVER_PI * (v + 0.044715 * v * v * v));
  y[i] = 0.5 * v * (1.0 + t);
}
