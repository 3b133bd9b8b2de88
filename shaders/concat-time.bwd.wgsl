// Glue, the backward of concat-time (split along time): da [B, T1, C] (+)= dout[:, :T1], db [B, T2, C] (+)= dout[:, T1:].
// 1-D grid over the B * (T1 + T2) * C elements of dout, foldable; each writes one element of da or db.

struct Params {
  B: u32,
  T1: u32,
  T2: u32,
  C: u32,
  accumulate: u32,
}

@group(0) @binding(0) var<storage, read> dout: array<f32>;
@group(0) @binding(1) var<storage, read_write> da: array<f32>;
@group(0) @binding(2) var<storage, read_write> db: array<f32>;
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
  let g = dout[i];
  if (t < params.T1) {
    let j = (bi * params.T1 + t) * params.C + c;
    if (params.accumulate != 0u) { da[j] = da[j] + g; } else { da[j] = g; }
  } else {
    let j = (bi * params.T2 + (t - params.T1)) * params.C + c;
    if (params.accumulate != 0u) { db[j] = db[j] + g; } else { db[j] = g; }
  }
}
