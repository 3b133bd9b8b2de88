// What a kernel is, as the runtime sees it: WGSL source, its bindings (inputs, then outputs), the fields
// of its uniform `Params` struct, and its override constants. Shapes are never part of a KernelDef:
// they travel in Params at dispatch time, so one compiled pipeline serves every shape.

export type ScalarType = 'u32' | 'i32' | 'f32';
export type ParamField = readonly [name: string, type: ScalarType];

export interface Binding {
  name: string;
  /** 'read' -> var<storage, read>; 'read_write' -> var<storage, read_write>. */
  access: 'read' | 'read_write';
}

export interface KernelDef {
  /** `<op>.<pass>[.<entry>]`, e.g. 'matmul.fwd', 'layer-norm.bwd.dgamma'. Names the pipeline and errors. */
  name: string;
  /** The whole `.wgsl` file. */
  source: string;
  entryPoint: string;
  /** In @binding order; the Params uniform (if any fields) sits at binding `bindings.length`. */
  bindings: readonly Binding[];
  /** Fields of `struct Params`, in order. A unit test checks them against the WGSL. */
  params: readonly ParamField[];
  /** Defaults for the shader's `override` constants (workgroup and tile sizes). */
  overrides?: Readonly<Record<string, number>>;
  /**
   * The grid is 1-D and the shader rebuilds a flat workgroup index from (x, y) as
   * `wid.x + wid.y * nwg.x` and bounds-checks it, so the runtime may fold x above
   * maxComputeWorkgroupsPerDimension into y.
   */
  foldable?: boolean;
}

export const PARAMS_SLOT_BYTES = 256; // minUniformBufferOffsetAlignment on every adapter we know

/** Packs named values in `fields` order into `out` (4 bytes each, as WGSL lays out a struct of scalars). */
export function packParams(fields: readonly ParamField[], values: Readonly<Record<string, number>>, out: DataView, byteOffset = 0): void {
  if (fields.length * 4 > PARAMS_SLOT_BYTES) throw new Error(`Params has ${fields.length} fields; at most ${PARAMS_SLOT_BYTES / 4} fit`);
  fields.forEach(([name, type], i) => {
    const v = values[name];
    if (v === undefined || (Number.isNaN(v) && type !== 'f32')) {
      throw new Error(`Params field '${name}' (${type}) has no value`);
    }
    const at = byteOffset + 4 * i;
    if (type === 'f32') out.setFloat32(at, v, true);
    else if (type === 'u32') {
      if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new Error(`Params field '${name}' must be a u32, got ${v}`);
      out.setUint32(at, v, true);
    } else {
      if (!Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff) throw new Error(`Params field '${name}' must be an i32, got ${v}`);
      out.setInt32(at, v, true);
    }
  });
  for (const name of Object.keys(values)) {
    if (!fields.some(([f]) => f === name)) throw new Error(`Params has no field '${name}' (fields: ${fields.map(([f]) => f).join(', ')})`);
  }
}

/**
 * Reads `struct Params { a: u32, b: f32, ... }` out of WGSL source. Used by the test that the TS
 * packing order matches the shader, and by the runtime's self-check.
 */
export function parseWgslParams(source: string): ParamField[] | null {
  const m = /struct\s+Params\s*\{([^}]*)\}/m.exec(source.replace(/\/\/[^\n]*/g, ''));
  if (!m) return null;
  return m[1]!
    .split(/[,;\n]/)
    .map((s) => s.trim())
    .filter(Boolean)
    .map((decl) => {
      const mm = /^(\w+)\s*:\s*(u32|i32|f32)$/.exec(decl);
      if (!mm) throw new Error(`struct Params: unsupported field '${decl}' (only u32, i32 and f32 scalars)`);
      return [mm[1]!, mm[2] as ScalarType] as const;
    });
}

/** Splits a 1-D workgroup count into (x, y) with both under `maxPerDim`. */
export function foldGrid(count: number, maxPerDim: number): [number, number] {
  if (count <= maxPerDim) return [count, 1];
  const y = Math.ceil(count / maxPerDim);
  const x = Math.ceil(count / y);
  if (y > maxPerDim) throw new Error(`${count} workgroups cannot be folded under ${maxPerDim} per dimension`);
  return [x, y];
}

export function pipelineKey(def: KernelDef, overrides: Readonly<Record<string, number>>): string {
  const o = Object.keys(overrides)
    .sort()
    .map((k) => `${k}=${overrides[k]}`)
    .join(',');
  return `${def.name}#${def.entryPoint}{${o}}`;
}
