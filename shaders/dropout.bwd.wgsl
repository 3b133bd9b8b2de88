// Dropout backward: dx[i] = keep_i ? dy[i] * scale : 0, with keep_i regenerated from (seed, offset + i)
// exactly as in dropout.fwd.wgsl (same hash, threshold and scale; no mask buffer is read).
// dy, dx: [n] contiguous f32. `accumulate` = 1 adds into dx instead of overwriting it.
// One invocation per element; 1-D grid that the runtime may fold into (x, y).

struct Params {
  n: u32,
  seed: u32,
  offset: u32,
  threshold: u32,
  scale: f32,
  accumulate: u32,
}

@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read_write> dx: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

override WG: u32 = 256;

// Same PCG hash as dropout.fwd.wgsl.
fn pcg(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

fn keep(i: u32) -> bool {
  return pcg(pcg(params.seed) ^ pcg(params.offset + i)) >= params.threshold;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  if (i >= params.n) { return; }
  var d = 0.0;
  if (keep(i)) { d = dy[i] * params.scale; }
  if (params.accumulate != 0u) { d = d + dx[i]; }
  dx[i] = d;
}
