// Embedding gather: out[n, c] = table[ids[n], c].
// ids: [N] (f32 holding integer token ids, exact below 2^24), table: [V, C], out: [N, C], row-major contiguous f32.
// An id outside [0, V) gives a row of zeros (the wrappers' callers check ids on the host; the kernel never reads
// out of bounds). One invocation per output element (neighbouring invocations read neighbouring c of one row).
// No barriers, no workgroup memory. 1-D grid, foldable.

struct Params {
  N: u32,
  V: u32,
  C: u32,
}

@group(0) @binding(0) var<storage, read> ids: array<f32>;
@group(0) @binding(1) var<storage, read> table: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid; // flat index n * C + c
  if (i >= params.N * params.C) { return; }
  let n = i / params.C;
  let c = i - n * params.C;
  let id = ids[n];
  if (id < 0.0 || id >= f32(params.V)) {
    out[i] = 0.0;
    return;
  }
  out[i] = table[u32(id) * params.C + c];
}
