// The TS packing order of every kernel's Params must match its WGSL `struct Params`, field by field.

import { describe, expect, it } from 'vitest';
import { BASELINES } from '@emofuse/bench';
import {
  PARAMS_SLOT_BYTES,
  allKernels as productKernels,
  foldGrid,
  packParams,
  parseWgslParams,
  pipelineKey,
  type KernelDef,
} from '@emofuse/kernels';

// The op table's kernels and the bench's baselines (fused cross-attention v1-v3, the unfused path's permutes).
const allKernels = [...productKernels, ...BASELINES.flatMap((b) => b.kernels)];

describe('Params packing', () => {
  it.each(allKernels.map((k) => [k.name, k] as const))('%s: KernelDef.params matches struct Params in its .wgsl', (_name, def) => {
    const wgsl = parseWgslParams(def.source);
    if (def.params.length === 0) {
      expect(wgsl === null || wgsl.length === 0).toBe(true);
    } else {
      expect(wgsl).toEqual(def.params.map(([n, t]) => [n, t]));
    }
  });

  it.each(allKernels.map((k) => [k.name, k] as const))('%s: bindings match the @binding declarations in order', (_name, def) => {
    const decls = [
      ...def.source.matchAll(/@group\(0\)\s*@binding\((\d+)\)\s*var<(storage|uniform)(?:,\s*(read|read_write))?>\s*(\w+)/g),
    ].map((m) => ({
      binding: Number(m[1]),
      space: m[2],
      access: m[3] ?? 'read',
      name: m[4],
    }));
    decls.sort((a, b) => a.binding - b.binding);
    const storage = decls.filter((d) => d.space === 'storage');
    expect(storage.map((d) => [d.binding, d.name, d.access])).toEqual(def.bindings.map((b, i) => [i, b.name, b.access]));
    const uniforms = decls.filter((d) => d.space === 'uniform');
    expect(uniforms.map((d) => d.binding)).toEqual(def.params.length ? [def.bindings.length] : []);
  });

  it('packs fields in order as 4-byte little-endian scalars and rejects unknown or missing fields', () => {
    const fields = [
      ['M', 'u32'],
      ['scale', 'f32'],
      ['offset', 'i32'],
    ] as const;
    const view = new DataView(new ArrayBuffer(PARAMS_SLOT_BYTES));
    packParams(fields, { M: 7, scale: 0.125, offset: -3 }, view);
    expect(view.getUint32(0, true)).toBe(7);
    expect(view.getFloat32(4, true)).toBe(0.125);
    expect(view.getInt32(8, true)).toBe(-3);
    expect(() => packParams(fields, { M: 7, scale: 1 }, view)).toThrow(/offset/);
    expect(() => packParams(fields, { M: 7, scale: 1, offset: 0, N: 2 }, view)).toThrow(/no field 'N'/);
    expect(() => packParams(fields, { M: -1, scale: 1, offset: 0 }, view)).toThrow(/u32/);
  });

  it('parses a struct with comments and trailing commas', () => {
    expect(parseWgslParams('struct Params {\n  n: u32, // count\n  eps: f32,\n}\n')).toEqual([
      ['n', 'u32'],
      ['eps', 'f32'],
    ]);
    expect(() => parseWgslParams('struct Params { v: vec4f }')).toThrow(/unsupported field/);
  });
});

describe('dispatch folding and pipeline keys', () => {
  it('folds a 1-D grid under the per-dimension limit and covers every workgroup', () => {
    expect(foldGrid(10, 65535)).toEqual([10, 1]);
    for (const n of [65536, 65535 * 3 + 1, 1_000_003]) {
      const [x, y] = foldGrid(n, 65535);
      expect(x).toBeLessThanOrEqual(65535);
      expect(y).toBeLessThanOrEqual(65535);
      expect(x * y).toBeGreaterThanOrEqual(n);
      expect(x * (y - 1)).toBeLessThan(n); // no fully idle row of workgroups
    }
  });

  it('keys pipelines by kernel name and overrides, never by shape', () => {
    const def = allKernels[0] as KernelDef;
    expect(pipelineKey(def, { WG: 64, B: 2 })).toBe(pipelineKey(def, { B: 2, WG: 64 }));
    expect(pipelineKey(def, { WG: 64 })).not.toBe(pipelineKey(def, { WG: 128 }));
  });
});
