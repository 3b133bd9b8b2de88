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
  tensors: Map<string, SafeTensor>;
}

/** Parses and bounds-checks a safetensors file; tensor data are views into `bytes` (copied when unaligned). */
export function decodeSafetensors(bytes: Uint8Array, file = '<safetensors>'): DecodedSafetensors {
  if (bytes.length < 8) throw new SafetensorsError(`${file}: too short to be safetensors (${bytes.length} bytes)`);
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  if (n <= 0 || 8 + n > bytes.length)
    throw new SafetensorsError(
      `${file}: header length ${n} runs past the end of the file (${bytes.length} bytes): truncated or not safetensors`,
    );
  let header: Record<string, { dtype: SafeDtype; shape: number[]; data_offsets: [number, number] } | Record<string, string>>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  } catch {
    throw new SafetensorsError(`${file}: header is not valid JSON`);
  }
  const base = 8 + n;
  const tensors = new Map<string, SafeTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = entry as Record<string, string>;
      continue;
    }
    const e = entry as { dtype: SafeDtype; shape: number[]; data_offsets: [number, number] };
    const width = WIDTH[e.dtype];
    if (!width) throw new SafetensorsError(`${file}: tensor '${name}' has unsupported dtype ${e.dtype}`);
    const [begin, end] = e.data_offsets;
    if (end - begin !== e.shape.reduce((a, b) => a * b, 1) * width || base + end > bytes.length) {
      throw new SafetensorsError(
        `${file}: tensor '${name}' [${e.shape}] ${e.dtype} at bytes ${begin}..${end} does not fit the file ` +
          `(${bytes.length - base} data bytes): truncated?`,
      );
    }
    let data = bytes.subarray(base + begin, base + end);
    if (data.byteOffset % width !== 0) data = data.slice();
    tensors.set(name, { dtype: e.dtype, shape: e.shape, data });
  }
  return { metadata, tensors };
}
