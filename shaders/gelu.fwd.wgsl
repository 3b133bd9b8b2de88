// GELU forward, y = gelu(x), in one of two forms (params.erf):
//   erf = 0, tanh form (GPT-2 / "gelu_new"):  y = 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))
//   erf = 1, exact form (BERT's "gelu"):       y = 0.5 * x * (1 + erf(x / sqrt(2)))
// WGSL has no erf: erf_f32 below is a rational approximation (its comment states the error).
// x, y: [n] contiguous f32. One invocation per element; 1-D grid that the runtime may fold into (x, y).

struct Params {
  n: u32,
  erf: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

override WG: u32 = 256;

const SQRT_2_OVER_PI: f32 = 0.7978845608028654;
const INV_SQRT_2: f32 = 0.7071067811865476;

// tanh that stays finite for large |u| (some drivers compute tanh through exp and overflow).
fn safe_tanh(u: f32) -> f32 {
  return tanh(clamp(u, -15.0, 15.0));
}

// erf_f32(v): shaders/gelu.erf.wgsl, appended to this source by its op (packages/kernels/src/ops/gelu.ts ERF_WGSL).

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  if (i >= params.n) { return; }
  let v = x[i];
  if (params.erf != 0u) {
    y[i] = 0.5 * v * (1.0 + erf_f32(v * INV_SQRT_2));
    return;
  }
  let t = safe_tanh(SQRT_2_OVER_PI * (v + 0.044715 * v * v * v));
  y[i] = 0.5 * v * (1.0 + t);
}
