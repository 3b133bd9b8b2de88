// The backends a user can pick by name (`--backend <name>`), in one registry: adding a backend is one entry
// here, and every command lists and opens them through it.

import type { Backend } from './backend.ts';
import { CpuBackend } from './backend-cpu.ts';
import { createOrtBackend } from './backend-ort.ts';
import { WgslBackend } from './backend-wgsl.ts';

export interface BackendEntry {
  /** What it runs on, for --help and error messages. */
  summary: string;
  open: () => Promise<Backend>;
}

export const BACKENDS = {
  wgsl: { summary: 'our WebGPU kernels', open: () => WgslBackend.create() },
  cpu: { summary: 'the float64 CPU references', open: async () => new CpuBackend('f32') },
  ort: { summary: "onnxruntime-node's CPU kernels (fast without a GPU)", open: async () => createOrtBackend() },
} satisfies Record<string, BackendEntry>;

export type BackendChoice = keyof typeof BACKENDS;
export const BACKEND_NAMES = Object.keys(BACKENDS) as BackendChoice[];
export const DEFAULT_BACKEND: BackendChoice = 'wgsl';

/** A backend name that is not in BACKENDS. */
export class UnknownBackendError extends Error {
  override name = 'UnknownBackendError';
}

/** "'wgsl' (our WebGPU kernels) or 'cpu' (the float64 CPU references)": the registry in words. */
export function describeBackends(): string {
  const items = BACKEND_NAMES.map((n) => `'${n}' (${BACKENDS[n].summary})`);
  return items.length < 2 ? items.join('') : `${items.slice(0, -1).join(', ')} or ${items.at(-1)}`;
}

export function isBackendName(name: string): name is BackendChoice {
  return Object.hasOwn(BACKENDS, name);
}

/** Opens the backend registered under `name`; `where` names the setting in the error (e.g. '--backend'). */
export async function openBackend(name: string, where = 'backend'): Promise<Backend> {
  if (!isBackendName(name)) throw new UnknownBackendError(`${where} must be ${describeBackends()}, got '${name}'`);
  return BACKENDS[name].open();
}
