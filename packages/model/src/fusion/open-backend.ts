// The backends a user can pick by name (`--backend <name>`), in one registry: adding a backend is one entry
// here, and every command lists and opens them through it.

import { Gpu } from '@emofuse/kernels';
import type { Backend } from './backend.ts';
import { CpuBackend } from './backend-cpu.ts';
import { chooseAutoBackend, createOrtBackend, ortLoadError } from './backend-ort.ts';
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
  auto: { summary: 'wgsl on a hardware GPU, else ort; the choice and its reason are printed', open: openAuto },
} satisfies Record<string, BackendEntry>;

export type BackendChoice = keyof typeof BACKENDS;
export const BACKEND_NAMES = Object.keys(BACKENDS) as BackendChoice[];
export const DEFAULT_BACKEND: BackendChoice = 'auto';

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

/**
 * `auto`: probes the WebGPU adapter once, then opens wgsl on a hardware GPU and the ort backend on a software
 * adapter (or none): on the CPU, onnxruntime's MLAS kernels train the same model about 10x faster than llvmpipe
 * running our WGSL (`emofuse bench train`). The reason is part of the backend's description, which every command
 * prints.
 */
async function openAuto(): Promise<Backend> {
  let gpu: Gpu | null = null;
  let adapterError = 'no WebGPU adapter';
  try {
    gpu = await Gpu.create();
  } catch (err) {
    adapterError = `no WebGPU adapter (${(err as Error).message.split('\n')[0]})`;
  }
  const choice = chooseAutoBackend(gpu?.adapter ?? null, ortLoadError(), adapterError);
  // wgsl keeps the device the probe opened; ort does not need it.
  if (choice.backend === 'ort') await gpu?.destroy();
  const backend: Backend = choice.backend === 'wgsl' ? await WgslBackend.create(gpu!, true) : createOrtBackend();
  // The description is what commands print; say why auto chose this backend.
  return Object.assign(backend, { description: `${backend.description} [auto: ${choice.reason}]` });
}
