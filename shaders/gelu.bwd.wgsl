// GELU backward, dx = dy * gelu'(x), in one of two forms (params.erf):
//   erf = 0, tanh form: with t = tanh(u), u = sqrt(2/pi) (x + 0.044715 x^3):
//     gelu'(x) = 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2)
//   erf = 1, exact form: gelu'(x) = 0.5 (1 + erf(x / sqrt(2))) + x exp(-x^2 / 2) / sqrt(2 pi)
// x, dy, dx: [n] contiguous f32. `accumulate` = 1 adds into dx instead of overwriting it.

struct Params {
  n: u32,
  accumulate: u32,
  erf: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

override WG: u32 = 256;

const SQRT_2_OVER_PI: f32 = 0.7978845608028654;
const INV_SQRT_2: f32 = 0.7071067811865476;
const INV_SQRT_2PI: f32 = 0.3989422804014327;

// erf_f32(v): shaders/gelu.erf.wgsl, appended to this source by its op (packages/kernels/src/ops/gelu.ts ERF_WGSL).

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  if (i >= params.n) { return; }
  let v = x[i];
  var g: f32;
  if (params.erf != 0u) {
    let vc = clamp(v, -10.0, 10.0); // exp(-50) x 10 = 2e-21: the density term is 0 in f32 beyond, and x^2 stays finite
    g = 0.5 * (1.0 + erf_f32(v * INV_SQRT_2)) + vc * exp(-0.5 * vc * vc) * INV_SQRT_2PI;
  } else {
    let t = tanh(clamp(SQRT_2_OVER_PI * (v + 0.044715 * v * v * v), -15.0, 15.0));
    g = 0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * SQRT_2_OVER_PI * (1.0 + 3.0 * 0.044715 * v * v);
  }
  var d = dy[i] * g;
  if (params.accumulate != 0u) { d = d + dx[i]; }
  dx[i] = d;
}
