// Glue: out [B, T1 + T2, C] = a [B, T1, C] followed by b [B, T2, C] along time (the self-attention blocks run
// over the concatenated text and audio tokens). 1-D grid over the B * (T1 + T2) * C outputs, foldable.

struct Params {
  B: u32,
  T1: u32,
  T2: u32,
  C: u32,
}

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  let T = params.T1 + params.T2;
  if (i >= params.B * T * params.C) { return; }
  let c = i % params.C;
  let t = (i / params.C) % T;
  let bi = i / (params.C * T);
  if (t < params.T1) {
    out[i] = a[(bi * params.T1 + t) * params.C + c];
  } else {
    out[i] = b[(bi * params.T2 + (t - params.T1)) * params.C + c];
  }
}
