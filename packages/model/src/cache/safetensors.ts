// The safetensors file format (huggingface/safetensors): 8-byte little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets: [begin, end]}, __metadata__: {string: string}} padded with spaces to a
// multiple of 8, then the raw little-endian tensor bytes. Small enough to write here; readers check every offset.

export type SafeDtype = 'F32' | 'F16' | 'I32' | 'U8';
const WIDTH: Record<SafeDtype, number> = { F32: 4, F16: 2, I32: 4, U8: 1 };

export interface SafeTensor {
  dtype: SafeDtype;
  shape: number[];
  /** Little-endian bytes (x86/ARM are little-endian, so a typed array's bytes as they are). */
  data: Uint8Array;
}

export class SafetensorsError extends Error {
  override name = 'SafetensorsError';
}

export function bytesOf(a: Float32Array | Uint16Array | Int32Array | Uint8Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

export function encodeSafetensors(tensors: Record<string, SafeTensor>, metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const expected = t.shape.reduce((a, b) => a * b, 1) * WIDTH[t.dtype];
    if (t.data.byteLength !== expected)
      throw new SafetensorsError(`tensor '${name}': ${t.data.byteLength} bytes for shape [${t.shape}] ${t.dtype} (expected ${expected})`);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + expected] };
    offset += expected;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const t of Object.values(tensors)) {
    out.set(t.data, at);
    at += t.data.byteLength;
  }
  return out;
}

export interface DecodedSafetensors {
  metadata: Record<string, string>;
  /** In the header's order, each with its `offsets` [begin, end) into the data section. */
  tensors: Map<string, SafeTensor & { offsets: [number, number] }>;
  /** Every byte after the header (what the offsets index). */
  dataSection: Uint8Array;
}

/** A header a file may declare without us allocating it: larger is refused before it is decoded. */
const MAX_HEADER_BYTES = 100 << 20;

const isUint = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;

/**
 * Parses and bounds-checks a safetensors file; tensor data are views into `bytes` (copied when unaligned). Checked as
 * huggingface/safetensors checks: the header a JSON object of tensors {dtype, shape, data_offsets} and string metadata,
 * every shape and offset a non-negative integer, each tensor's byte count its shape's, and the tensors tiling the data
 * section in order with no gap, overlap or byte left over. Anything else is a SafetensorsError naming the file and what.
 */
export function decodeSafetensors(bytes: Uint8Array, file = '<safetensors>'): DecodedSafetensors {
  const bad = (what: string) => new SafetensorsError(`${file}: ${what}`);
  if (bytes.length < 8) throw bad(`too short to be safetensors (${bytes.length} bytes)`);
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  if (n <= 0 || 8 + n > bytes.length || n > MAX_HEADER_BYTES)
    throw bad(`header length ${n} runs past the end of the file (${bytes.length} bytes): truncated or not safetensors`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch {
    throw bad('header is not valid JSON');
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw bad('header is not a JSON object');
  const base = 8 + n;
  const dataSection = bytes.subarray(base);
  const tensors: DecodedSafetensors['tensors'] = new Map();
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof entry !== 'object' || entry === null || Array.isArray(entry) || Object.values(entry).some((v) => typeof v !== 'string'))
        throw bad("'__metadata__' is not an object of strings");
      metadata = entry as Record<string, string>;
      continue;
    }
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown } | null;
    if (typeof e !== 'object' || e === null) throw bad(`tensor '${name}' is not an object {dtype, shape, data_offsets}`);
    if (typeof e.dtype !== 'string' || !Object.hasOwn(WIDTH, e.dtype))
      throw bad(`tensor '${name}' has unsupported dtype ${JSON.stringify(e.dtype)} (this reader knows ${Object.keys(WIDTH).join(', ')})`);
    const dtype = e.dtype as SafeDtype;
    const width = WIDTH[dtype];
    if (!Array.isArray(e.shape) || !e.shape.every(isUint))
      throw bad(`tensor '${name}' has shape ${JSON.stringify(e.shape)}, not a list of sizes`);
    const o = e.data_offsets;
    if (!Array.isArray(o) || o.length !== 2 || !isUint(o[0]) || !isUint(o[1]) || o[1] < o[0])
      throw bad(`tensor '${name}' has data_offsets ${JSON.stringify(o)}, not [begin, end] with begin <= end`);
    const shape = e.shape as number[];
    const [begin, end] = o as [number, number];
    const count = shape.reduce((a, b) => a * b, 1);
    if (end - begin !== count * width || base + end > bytes.length) {
      throw bad(
        `tensor '${name}' [${shape}] ${dtype} at bytes ${begin}..${end} does not fit the file ` +
          `(${bytes.length - base} data bytes): truncated?`,
      );
    }
    let data = bytes.subarray(base + begin, base + end);
    if (data.byteOffset % width !== 0) data = data.slice();
    tensors.set(name, { dtype, shape, data, offsets: [begin, end] });
  }
  // The tensors tile the data section: sorted by begin, each starts where the one before ended, the last ends at the end.
  let at = 0;
  for (const [name, t] of [...tensors].sort((a, b) => a[1].offsets[0] - b[1].offsets[0] || a[1].offsets[1] - b[1].offsets[1])) {
    if (t.offsets[0] !== at)
      throw bad(`tensor '${name}' starts at data byte ${t.offsets[0]}, where ${at} was expected (tensors overlap or leave a gap)`);
    at = t.offsets[1];
  }
  if (at !== dataSection.length) throw bad(`${dataSection.length - at} data bytes after the last tensor: damaged or not safetensors`);
  return { metadata, tensors, dataSection };
}
