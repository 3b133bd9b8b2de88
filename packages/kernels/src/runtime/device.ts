// Device acquisition: one function for Node (Dawn through npm `webgpu`) and browsers (`navigator.gpu`).
//
// Order when nothing is chosen ("auto"):
//   1. a hardware adapter from the platform's default backend (Vulkan on Linux, Metal, D3D12);
//   2. a software adapter: Mesa llvmpipe through Dawn's OpenGL ES backend (the default software route,
//      see DEVELOPERS.md for why), then Mesa lavapipe through Vulkan.
// `EMOFUSE_ADAPTER` (or `settings.adapter`) chooses explicitly: `auto`, `vulkan`, `opengles`, `opengl`,
// `metal`, `d3d12`, `d3d11`, optionally followed by `:<name>` to pick an adapter whose vendor, device or
// description contains <name> (case-insensitive), e.g. `vulkan:lavapipe`, `vulkan:nvidia`.
// The `null` backend computes nothing and is refused.

export type DawnBackend = 'vulkan' | 'opengles' | 'opengl' | 'metal' | 'd3d12' | 'd3d11';
const BACKENDS: readonly DawnBackend[] = ['vulkan', 'opengles', 'opengl', 'metal', 'd3d12', 'd3d11'];

export interface AdapterChoice {
  backend: DawnBackend | 'auto';
  /** Substring of vendor / device / description, case-insensitive. */
  name?: string;
}

export interface AdapterDescription {
  backend: DawnBackend | 'browser';
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isSoftware: boolean;
  featureLevel: 'core' | 'compatibility';
}

/** Limits every emofuse kernel may rely on; requested explicitly (the defaults are smaller). */
export const REQUIRED_LIMITS = {
  maxComputeInvocationsPerWorkgroup: 256,
  maxComputeWorkgroupSizeX: 256,
  maxComputeWorkgroupSizeY: 256,
  maxComputeWorkgroupStorageSize: 16384,
  maxStorageBuffersPerShaderStage: 10,
} as const;

/** Limits asked for as large as the adapter allows (bigger tensors), never below WebGPU's defaults. */
const GENEROUS_LIMITS = ['maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeWorkgroupStorageSize'] as const;

export class GpuUnavailableError extends Error {
  override name = 'GpuUnavailableError';
}

export function parseAdapterChoice(spec: string | undefined): AdapterChoice {
  const raw = (spec ?? '').trim();
  if (raw === '' || raw === 'auto') return { backend: 'auto' };
  const [backendPart, ...rest] = raw.split(':');
  const backend = backendPart!.trim().toLowerCase();
  const name = rest.join(':').trim() || undefined;
  if (backend === 'null') {
    throw new GpuUnavailableError(
      `EMOFUSE_ADAPTER=${raw}: the 'null' backend computes nothing and is never accepted. ` +
        `Use 'auto', or one of ${BACKENDS.join(', ')}.`,
    );
  }
  if (backend === 'auto') return { backend: 'auto', name };
  if (!(BACKENDS as readonly string[]).includes(backend)) {
    throw new GpuUnavailableError(
      `EMOFUSE_ADAPTER=${raw}: unknown backend '${backend}'. Use 'auto' or one of ${BACKENDS.join(', ')}, ` +
        `optionally followed by ':<adapter name>', e.g. 'vulkan:lavapipe'.`,
    );
  }
  return { backend: backend as DawnBackend, name };
}

const SOFTWARE_PATTERN = /llvmpipe|lavapipe|swiftshader|softpipe|software|microsoft basic render/i;

function describe(
  info: GPUAdapterInfo,
  backend: AdapterDescription['backend'],
  featureLevel: 'core' | 'compatibility',
): AdapterDescription {
  const vendor = info.vendor ?? '';
  const architecture = info.architecture ?? '';
  const device = info.device ?? '';
  const description = info.description ?? '';
  const isSoftware =
    Boolean((info as { isFallbackAdapter?: boolean }).isFallbackAdapter) ||
    architecture === 'software' ||
    SOFTWARE_PATTERN.test(`${vendor} ${architecture} ${device} ${description}`);
  return { backend, vendor, architecture, device, description, isSoftware, featureLevel };
}

function matchesName(d: AdapterDescription, name: string | undefined): boolean {
  if (!name) return true;
  return `${d.vendor} ${d.device} ${d.description}`.toLowerCase().includes(name.toLowerCase());
}

export interface AcquiredAdapter {
  adapter: GPUAdapter;
  description: AdapterDescription;
  /** Holds the Dawn instance alive; dropped by `Gpu.destroy()` so the process can exit. */
  instance: GPU;
}

type DawnModule = { create(flags: string[]): GPU; globals: Record<string, unknown> };
let dawn: DawnModule | undefined;

async function loadDawn(): Promise<DawnModule> {
  if (dawn) return dawn;
  try {
    dawn = (await import('webgpu')) as unknown as DawnModule;
  } catch (err) {
    throw new GpuUnavailableError(
      `Cannot load Dawn's WebGPU for Node (npm package 'webgpu'): ${(err as Error).message}. Run 'npm install' in the emofuse folder.`,
    );
  }
  // GPUBufferUsage, GPUMapMode, GPUShaderStage... as in a browser.
  for (const [k, v] of Object.entries(dawn.globals)) {
    if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  }
  return dawn;
}

/**
 * One Dawn instance per backend per process, shared by every Gpu on it and dropped when the last one is
 * released (so Node can exit). A second instance of the same backend in one process crashed the process at
 * teardown in about 1 run in 5 on Mesa's GLES route ("terminate called after throwing an instance of
 * 'std::system_error' what(): Invalid argument", test/runtime/errors.test.ts before this; DEVELOPERS.md).
 */
const instances = new Map<string, { instance: GPU; users: number }>();

function acquireInstance(create: DawnModule['create'], flags: string[]): GPU {
  const key = flags.join(' ');
  let entry = instances.get(key);
  if (!entry) {
    entry = { instance: create(flags), users: 0 };
    instances.set(key, entry);
  }
  entry.users++;
  return entry.instance;
}

/** How many Dawn instances this process holds, and how many Gpus use them (diagnostics and tests). */
export function dawnInstances(): { instances: number; users: number } {
  let users = 0;
  for (const e of instances.values()) users += e.users;
  return { instances: instances.size, users };
}

/** Gives back an instance from acquireAdapter; the last user's release drops it. */
export function releaseInstance(instance: GPU): void {
  for (const [key, entry] of instances) {
    if (entry.instance !== instance) continue;
    if (--entry.users <= 0) instances.delete(key);
    return;
  }
}

/**
 * Runs `f` (synchronous native work) with file descriptor 2 pointing at /dev/null, then back at what it was.
 * Dawn's requestAdapter prints two lines straight to the C stderr on every OpenGL ES adapter
 * ("maxDynamicUniformBuffersPerPipelineLayout / maxDynamicStorageBuffersPerPipelineLayout artificially reduced
 * ... to fit dynamic offset allocation limit"): a note about limits emofuse never comes near (it uses no dynamic
 * offsets), which no Dawn flag turns off. Node cannot dup2, so fd 2 is closed and /dev/null opened in its place
 * (the lowest free fd), then /proc/self/fd/<copy> reopened onto 2, all without yielding to the event loop (the
 * adapter is enumerated inside the call). Only on Linux, only when stderr is a terminal, pipe or file (a socket
 * cannot be reopened), and not with EMOFUSE_DEBUG set; anything unexpected leaves stderr as it was.
 */
function withoutNativeStderr<T>(f: () => T): T {
  type Fs = typeof import('node:fs');
  const proc = (globalThis as { process?: NodeJS.Process & { getBuiltinModule?: (id: string) => unknown } }).process;
  const fs = proc?.platform === 'linux' && !proc.env.EMOFUSE_DEBUG ? (proc.getBuiltinModule?.('node:fs') as Fs | undefined) : undefined;
  let copy = -1;
  try {
    if (!fs || fs.fstatSync(2).isSocket()) return f();
    fs.fstatSync(0); // 0 and 1 open: the /dev/null opened next is fd 2
    fs.fstatSync(1);
    copy = fs.openSync('/proc/self/fd/2', 'a');
  } catch {
    return f();
  }
  let silenced = false;
  try {
    fs.closeSync(2);
    const nul = fs.openSync('/dev/null', 'a');
    silenced = nul === 2;
    if (!silenced) fs.closeSync(nul);
    if (!silenced) restore();
    return f();
  } finally {
    if (silenced) restore();
    fs.closeSync(copy);
  }
  function restore(): void {
    try {
      fs!.closeSync(2);
    } catch {
      /* already closed */
    }
    fs!.openSync(`/proc/self/fd/${copy}`, 'a'); // the lowest free fd: 2 again
  }
}

async function tryBackend(backend: DawnBackend, name: string | undefined, tried: string[]): Promise<AcquiredAdapter | null> {
  const { create } = await loadDawn();
  const compat = backend === 'opengles' || backend === 'opengl';
  if (compat && process.platform === 'linux' && !process.env.EGL_PLATFORM) {
    // No display on servers and CI: Mesa's EGL must not look for X11/Wayland.
    process.env.EGL_PLATFORM = 'surfaceless';
  }
  const flags = [`backend=${backend}`];
  let instance: GPU;
  try {
    instance = acquireInstance(create, flags);
  } catch (err) {
    tried.push(`${backend}: ${(err as Error).message.split('\n')[0]}`);
    return null;
  }
  const adapter = await withoutNativeStderr(() =>
    instance.requestAdapter(
      compat ? ({ featureLevel: 'compatibility' } as GPURequestAdapterOptions) : { powerPreference: 'high-performance' },
    ),
  ).catch(() => null);
  if (!adapter) {
    releaseInstance(instance);
    tried.push(`${backend}: no adapter`);
    return null;
  }
  const description = describe(adapter.info, backend, compat ? 'compatibility' : 'core');
  if (!matchesName(description, name)) {
    releaseInstance(instance);
    tried.push(`${backend}: adapter '${description.device || description.description}' does not match '${name}'`);
    return null;
  }
  return { adapter, description, instance };
}

/**
 * Finds an adapter as described in the header. Throws GpuUnavailableError listing every route tried.
 */
export async function acquireAdapter(choice: AdapterChoice): Promise<AcquiredAdapter> {
  const tried: string[] = [];
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  const isNode = typeof process !== 'undefined' && Boolean(process.versions?.node);

  if (!isNode) {
    if (!nav?.gpu) throw new GpuUnavailableError('This browser has no WebGPU (navigator.gpu is undefined).');
    const adapter = await nav.gpu.requestAdapter({ powerPreference: 'high-performance' });
    if (!adapter) throw new GpuUnavailableError('navigator.gpu.requestAdapter() returned null.');
    return { adapter, description: describe(adapter.info, 'browser', 'core'), instance: nav.gpu };
  }

  if (choice.backend !== 'auto') {
    const got = await tryBackend(choice.backend, choice.name, tried);
    if (got) return got;
  } else {
    const hardwareBackend: DawnBackend = process.platform === 'darwin' ? 'metal' : process.platform === 'win32' ? 'd3d12' : 'vulkan';
    // A real GPU first. On Linux the Vulkan backend also offers lavapipe; that one is only used
    // below, after the GLES route, for the reasons in DEVELOPERS.md.
    const hw = mayHaveGpu() ? await tryBackend(hardwareBackend, choice.name, tried) : null;
    if (!hw && !mayHaveGpu()) tried.push(`${hardwareBackend}: skipped, no GPU device node in /dev/dri or /dev/nvidia*`);
    if (hw && !hw.description.isSoftware) return hw;
    if (hw) tried.push(`${hardwareBackend}: only a software adapter (${hw.description.device}); trying the preferred software route`);
    for (const b of SOFTWARE_ROUTES) {
      if (b === hardwareBackend && hw) return hw;
      const got = await tryBackend(b, choice.name, tried);
      if (got) {
        if (hw) releaseInstance(hw.instance); // the software adapter of the hardware probe is not used
        return got;
      }
    }
  }
  throw new GpuUnavailableError(
    `No WebGPU adapter found (EMOFUSE_ADAPTER=${choice.backend}${choice.name ? ':' + choice.name : ''}).\n` +
      `Tried:\n${tried.map((t) => '  - ' + t).join('\n')}\n` +
      `Without a GPU, install Mesa's software drivers (Debian/Ubuntu: ` +
      `'apt-get install libvulkan1 mesa-vulkan-drivers libegl1 libegl-mesa0 libgles2', Mesa >= 24; ` +
      `on Debian 12 from bookworm-backports), or run 'bash scripts/setup.sh' in the emofuse folder.`,
  );
}

/**
 * On Linux a GPU shows up as /dev/dri/renderD* or /dev/nvidia*. Without one, the Vulkan backend would only
 * offer lavapipe, so the hardware probe (and its second Dawn instance) is skipped.
 */
function mayHaveGpu(): boolean {
  if (process.platform !== 'linux') return true;
  try {
    const fs = process.getBuiltinModule?.('node:fs') as typeof import('node:fs') | undefined;
    if (!fs) return true;
    const dri = fs.existsSync('/dev/dri') ? fs.readdirSync('/dev/dri') : [];
    return dri.some((f) => f.startsWith('renderD')) || fs.readdirSync('/dev').some((f) => /^nvidia\d/.test(f));
  } catch {
    return true;
  }
}

/** Software routes in order of preference (see DEVELOPERS.md, "Software adapters"). */
export const SOFTWARE_ROUTES: readonly DawnBackend[] = ['opengles', 'vulkan'];

export function requiredLimitsFor(adapter: GPUAdapter, description: AdapterDescription): Record<string, number> {
  const out: Record<string, number> = {};
  const missing: string[] = [];
  const lim = adapter.limits as unknown as Record<string, number>;
  for (const [k, want] of Object.entries(REQUIRED_LIMITS)) {
    const have = lim[k];
    if (have === undefined || have < want) missing.push(`${k}: need ${want}, adapter offers ${have}`);
    else out[k] = want;
  }
  if (missing.length) {
    throw new GpuUnavailableError(
      `The adapter '${description.device || description.description}' (${description.backend}) cannot give the limits emofuse's ` +
        `kernels need:\n` +
        missing.map((m) => '  - ' + m).join('\n') +
        `\nChoose another adapter with EMOFUSE_ADAPTER (e.g. 'opengles' or 'vulkan').`,
    );
  }
  for (const k of GENEROUS_LIMITS) {
    const have = lim[k];
    if (have !== undefined) out[k] = Math.max(out[k] ?? 0, have);
  }
  return out;
}
