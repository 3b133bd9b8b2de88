// Global L2 norm, stage 2 of 2: out[0] = sqrt(sum_{j < count} partials[j]).
// partials: [>= count] f32, the per-workgroup sums of squares written by grad-norm.partial.wgsl for every tensor;
// out: [1] f32, the norm, left on the GPU (adamw reads it for clipping without a readback). count = 0 gives 0.
// One workgroup: each invocation sums partials lid, lid + WG, ... in order, then a tree reduction in workgroup
// memory. WG must be a power of 2. Dispatch exactly one workgroup.

struct Params {
  count: u32,
}

@group(0) @binding(0) var<storage, read> partials: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

override WG: u32 = 256;

var<workgroup> red: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
  var s = 0.0;
  for (var j = lid; j < params.count; j = j + WG) { s = s + partials[j]; }
  red[lid] = s;
  for (var h = WG / 2u; h > 0u; h = h >> 1u) {
    workgroupBarrier();
    if (lid < h) { red[lid] = red[lid] + red[lid + h]; }
  }
  if (lid == 0u) { out[0] = sqrt(red[0]); }
}
