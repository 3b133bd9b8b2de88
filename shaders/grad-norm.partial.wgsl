// Global L2 norm, stage 1 of 2: per-workgroup partial sums of squares of one tensor.
//   partials[offset + w] = sum_{i in chunk w} x[i]^2,   chunk w = [w * WG * ITEMS, (w + 1) * WG * ITEMS) ∩ [0, n)
// x: [n] contiguous f32 (one gradient tensor); partials: the scratch buffer shared by every tensor of one norm,
// this tensor owning slots [offset, offset + ceil(n / (WG * ITEMS))). Stage 2 (grad-norm.final.wgsl) sums all
// slots and takes the square root. No atomics: every workgroup writes its own slot.
// Each invocation sums ITEMS elements strided by WG (neighbouring invocations read neighbouring elements), then
// a tree reduction in workgroup memory (log2(WG) barriers) combines the WG sums. WG must be a power of 2.
// 1-D grid, foldable: workgroups past ceil(n / (WG * ITEMS)) (from folding) return before touching anything.
// Rounding: each partial is a sum of depth ITEMS + log2(WG) (16 by default) over non-negative terms.

struct Params {
  n: u32,
  offset: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> partials: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

override WG: u32 = 256;
override ITEMS: u32 = 8;

var<workgroup> red: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let w = wid.x + wid.y * nwg.x; // uniform across the workgroup, so this early return keeps barriers uniform
  let chunk = WG * ITEMS;
  if (w >= (params.n + chunk - 1u) / chunk) { return; }
  let base = w * chunk + lid;
  var s = 0.0;
  for (var k = 0u; k < ITEMS; k = k + 1u) {
    let i = base + k * WG;
    if (i < params.n) {
      let v = x[i];
      s = s + v * v;
    }
  }
  red[lid] = s;
  for (var h = WG / 2u; h > 0u; h = h >> 1u) {
    workgroupBarrier();
    if (lid < h) { red[lid] = red[lid] + red[lid + h]; }
  }
  if (lid == 0u) { partials[params.offset + w] = red[0]; }
}
