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

// erf(x) = x P(x^2) / Q(x^2) on [-4, 4], +-1 beyond (1 - erf(4) = 1.5e-8): the rational approximation of XLA's
// ErfImpl32 (also Eigen's generic_fast_erf_float). Only multiply-add and one divide, no exp. |error| <= 6.5e-8 in
// exact arithmetic, about 4.5e-7 evaluated in f32 (measured against C's erf on 2M points of [-8, 8]; 4.7e-7 read
// back through gelu.fwd on llvmpipe, test/kernels/gelu.test.ts). A&S 7.1.26 would be 1.5e-7 exact, 6e-7 in f32.
// The same function is in gelu.bwd.wgsl and matmul.fwd.wgsl (test/kernels/gelu.test.ts checks the copies agree).
fn erf_f32(v: f32) -> f32 {
  let x = clamp(v, -4.0, 4.0);
  let x2 = x * x;
  var p = -2.72614225801306e-10;
  p = fma(p, x2, 2.77068142495902e-08);
  p = fma(p, x2, -2.10102402082508e-06);
  p = fma(p, x2, -5.69250639462346e-05);
  p = fma(p, x2, -7.34990630326855e-04);
  p = fma(p, x2, -2.95459980854025e-03);
  p = fma(p, x2, -1.60960333262415e-02);
  var q = -1.45660718464996e-05;
  q = fma(q, x2, -2.13374055278905e-04);
  q = fma(q, x2, -1.68282697438203e-03);
  q = fma(q, x2, -7.37332916720468e-03);
  q = fma(q, x2, -1.42647390514189e-02);
  return x * p / q;
}

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
