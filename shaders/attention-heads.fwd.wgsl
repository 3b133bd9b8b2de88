// Head split / merge permutes for the unfused attention baseline (C = H*D, head h owns channels
// h*D .. h*D+D-1):
//   split: src [B, T, H, D] (= [B, T, C])  ->  dst [B, H, T, D]
//   merge: src [B, H, T, D]               ->  dst [B, T, H, D] (= [B, T, C]), the inverse of split
// Row-major contiguous f32. One invocation per destination element (writes contiguous across lanes,
// reads contiguous in runs of D); a pure copy, so no barriers or workgroup memory. 1-D grid over
// B*T*H*D elements, flat workgroup index wid.x + wid.y * nwg.x (the runtime may fold it).

struct Params {
  B: u32,
  T: u32,
  H: u32,
  D: u32,
}

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn split(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
         @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid; // index into dst [B, H, T, D]
  if (i >= params.B * params.H * params.T * params.D) { return; }
  let d = i % params.D;
  let t = (i / params.D) % params.T;
  let bh = i / (params.D * params.T);
  let h = bh % params.H;
  let b = bh / params.H;
  dst[i] = src[((b * params.T + t) * params.H + h) * params.D + d];
}

@compute @workgroup_size(WG)
fn merge(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
         @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid; // index into dst [B, T, H, D]
  if (i >= params.B * params.H * params.T * params.D) { return; }
  let d = i % params.D;
  let h = (i / params.D) % params.H;
  let bt = i / (params.D * params.H);
  let t = bt % params.T;
  let b = bt / params.T;
  dst[i] = src[((b * params.H + h) * params.T + t) * params.D + d];
}
