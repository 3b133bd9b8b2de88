// Embedding gather, backward (scatter-add): dtable[v, c] = sum over n with ids[n] = v of dout[n, c].
// ids: [N] (f32 integer token ids), dout: [N, C], dtable: [V, C], row-major contiguous f32. `accumulate` = 1 adds
// into dtable; otherwise every row of dtable is overwritten (zeros where no id points).
// One invocation per column c: it zeroes its column (unless accumulating), then walks n in order adding dout[n, c]
// into dtable[ids[n], c]. Repeated ids are summed by one invocation in a fixed order: no atomics, deterministic.
// Ids outside [0, V) are skipped. No barriers, no workgroup memory. 1-D grid over C.

struct Params {
  N: u32,
  V: u32,
  C: u32,
  accumulate: u32,
}

@group(0) @binding(0) var<storage, read> ids: array<f32>;
@group(0) @binding(1) var<storage, read> dout: array<f32>;
@group(0) @binding(2) var<storage, read_write> dtable: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

override WG: u32 = 64;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let c = (wid.x + wid.y * nwg.x) * WG + lid;
  if (c >= params.C) { return; }
  if (params.accumulate == 0u) {
    for (var v = 0u; v < params.V; v = v + 1u) {
      dtable[v * params.C + c] = 0.0;
    }
  }
  for (var n = 0u; n < params.N; n = n + 1u) {
    let id = ids[n];
    if (id < 0.0 || id >= f32(params.V)) { continue; }
    let at = u32(id) * params.C + c;
    dtable[at] = dtable[at] + dout[n * params.C + c];
  }
}
