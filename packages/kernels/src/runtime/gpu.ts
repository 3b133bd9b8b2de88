// The WebGPU runtime every op runs through: one device, a pipeline cache, a uniform arena for Params,
// dispatch with error scopes, tensors with upload / poison / readback, and a clean shutdown.
//
// Dispatches are queued and encoded together at `flush()` (or when a tensor is read): one command encoder,
// one compute pass and one set of error scopes per batch. When a batch fails validation, its dispatches are
// encoded again one by one, each in its own error scopes and never submitted, so the error still names the
// exact kernel and shapes. `sync` (EMOFUSE_SYNC=1) flushes after every dispatch instead, which pins errors to
// their dispatch even across flushes. `perDispatchScopes` keeps the earlier path (a command buffer and three
// error scopes per dispatch, encoded at dispatch time): `bench train --profile` measures the two against each
// other (a software adapter spends about as long on each scope as on a small kernel).
// `profile` with the adapter's `timestamp-query` feature (GpuOptions.timestamps) records the GPU time of every
// dispatch (one pass each, begin/end timestamps) per kernel name: `takeProfile()`.

import {
  acquireAdapter,
  parseAdapterChoice,
  releaseInstance,
  requiredLimitsFor,
  GpuUnavailableError,
  type AdapterChoice,
  type AdapterDescription,
} from './device.ts';
import { PARAMS_SLOT_BYTES, foldGrid, packParams, pipelineKey, type KernelDef } from './kernel.ts';

export class KernelError extends Error {
  override name = 'KernelError';
  constructor(
    readonly kernel: string,
    readonly shapes: string,
    readonly gpuMessage: string,
    readonly kind: 'validation' | 'out-of-memory' | 'internal' | 'compilation' | 'device-lost' | 'shape',
  ) {
    super(`${kernel}${shapes ? ` [${shapes}]` : ''}: ${kind === 'shape' ? '' : `WebGPU ${kind} error: `}${gpuMessage}`);
  }
}

export class Tensor {
  readonly size: number;
  constructor(
    readonly gpu: Gpu,
    readonly buffer: GPUBuffer,
    readonly shape: readonly number[],
  ) {
    this.size = shape.reduce((a, b) => a * b, 1);
  }
  toString(): string {
    return `[${this.shape.join(', ')}]`;
  }
  destroy(): void {
    this.buffer.destroy();
  }
}

export interface GpuOptions {
  /** `auto`, a backend, or `backend:name`; defaults to $EMOFUSE_ADAPTER, then `auto`. */
  adapter?: string | AdapterChoice;
  /** Wait for errors after every dispatch (slow; pins an error to its dispatch even across flushes). */
  sync?: boolean;
  /** Encode each dispatch at once in its own command buffer and error scopes (the path before batching). */
  perDispatchScopes?: boolean;
  /** Ask for the adapter's `timestamp-query` feature when it has one (for `profile`). */
  timestamps?: boolean;
}

/** GPU time per kernel name, from timestamp queries (`Gpu.profile`). */
export interface KernelTimes {
  [kernel: string]: { dispatches: number; gpuMs: number };
}

export interface DispatchArgs {
  /** Tensors in the KernelDef's binding order: inputs, then outputs. */
  tensors: readonly Tensor[];
  params?: Readonly<Record<string, number>>;
  /** Workgroup counts. For a `foldable` kernel give [n] and the runtime folds n under the per-dimension limit. */
  grid: readonly [number, number?, number?];
  overrides?: Readonly<Record<string, number>>;
  /** Shapes in words, for error messages: 'M=64 N=7 K=129'. */
  shapes?: string;
}

interface Pending {
  kernel: string;
  shapes: string;
  label: string;
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
  entries: GPUBindGroupEntry[];
  grid: [number, number, number];
  /** perDispatchScopes: encoded at dispatch time in its own error scopes. */
  encoded?: { commandBuffer: GPUCommandBuffer; errors: Promise<(GPUError | null)[]> };
}

function errorKind(e: GPUError): 'out-of-memory' | 'validation' | 'internal' {
  return e instanceof GPUOutOfMemoryError ? 'out-of-memory' : e instanceof GPUValidationError ? 'validation' : 'internal';
}

const ARENA_SLOTS = 512;
const STAGING_POOL_MAX_BYTES = 1 << 20;
const STAGING_POOL_PER_SIZE = 4;
const MAX_PENDING = 256;
const SCOPES: GPUErrorFilter[] = ['validation', 'out-of-memory', 'internal'];

export class Gpu {
  readonly limits: GPUSupportedLimits;
  private readonly pipelines = new Map<string, Promise<GPUComputePipeline>>();
  private readonly layouts = new Map<string, { bgl: GPUBindGroupLayout; pl: GPUPipelineLayout }>();
  private readonly arena: GPUBuffer;
  private readonly arenaData = new DataView(new ArrayBuffer(ARENA_SLOTS * PARAMS_SLOT_BYTES));
  private arenaUsed = 0;
  private pending: Pending[] = [];
  private lost: GPUDeviceLostInfo | null = null;
  private destroyed = false;
  private instance: GPU | null;
  /** Unmapped MAP_READ buffers by byte size, for `read` (see there). */
  private readonly staging = new Map<number, GPUBuffer[]>();
  readonly sync: boolean;
  /** See GpuOptions.perDispatchScopes; switch only between flushes (`setPerDispatchScopes`). */
  private perDispatchScopes: boolean;
  /** Whether the device has `timestamp-query` (asked for with GpuOptions.timestamps). */
  readonly hasTimestamps: boolean;
  private profiling = false;
  private kernelTimes: KernelTimes = {};

  private constructor(
    readonly device: GPUDevice,
    readonly adapter: AdapterDescription,
    instance: GPU,
    sync: boolean,
    perDispatchScopes: boolean,
  ) {
    this.instance = instance;
    this.sync = sync;
    this.perDispatchScopes = perDispatchScopes;
    this.hasTimestamps = device.features.has('timestamp-query');
    this.limits = device.limits;
    this.arena = device.createBuffer({
      label: 'emofuse params arena',
      size: ARENA_SLOTS * PARAMS_SLOT_BYTES,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    device.lost.then((info) => {
      this.lost = info;
    });
  }

  /** Acquires an adapter and device as DEVELOPERS.md describes; throws GpuUnavailableError with what was tried. */
  static async create(options: GpuOptions = {}): Promise<Gpu> {
    const env = typeof process !== 'undefined' ? process.env : {};
    const choice = typeof options.adapter === 'object' ? options.adapter : parseAdapterChoice(options.adapter ?? env.EMOFUSE_ADAPTER);
    const { adapter, description, instance } = await acquireAdapter(choice);
    let device: GPUDevice;
    try {
      const requiredLimits = requiredLimitsFor(adapter, description);
      const requiredFeatures: GPUFeatureName[] = options.timestamps && adapter.features.has('timestamp-query') ? ['timestamp-query'] : [];
      device = await adapter.requestDevice({ requiredLimits, requiredFeatures, label: 'emofuse' }).catch((err: Error) => {
        throw new GpuUnavailableError(`requestDevice failed on '${description.device}': ${err.message}`);
      });
    } catch (err) {
      if (description.backend !== 'browser') releaseInstance(instance);
      throw err;
    }
    // Errors outside any scope (should not happen) are not lost silently.
    device.addEventListener('uncapturederror', (ev) => {
      console.error(`emofuse: uncaptured WebGPU error: ${(ev as GPUUncapturedErrorEvent).error.message}`);
    });
    return new Gpu(device, description, instance, options.sync ?? env.EMOFUSE_SYNC === '1', options.perDispatchScopes ?? false);
  }

  /** Switches the dispatch path (see GpuOptions.perDispatchScopes) after submitting what is queued. */
  async setPerDispatchScopes(on: boolean): Promise<void> {
    await this.flush();
    this.perDispatchScopes = on;
  }

  /**
   * Starts recording GPU time per kernel (timestamp queries; needs `hasTimestamps`). Every flush then
   * waits for its timestamps, so time the step's wall clock without profiling.
   */
  async startProfile(): Promise<void> {
    if (!this.hasTimestamps)
      throw new Error(`'${this.adapter.device}' has no timestamp-query feature (or it was not asked for: GpuOptions.timestamps)`);
    await this.flush();
    this.profiling = true;
    this.kernelTimes = {};
  }

  /** Stops recording and returns GPU time per kernel name since startProfile. */
  async takeProfile(): Promise<KernelTimes> {
    await this.flush();
    this.profiling = false;
    const t = this.kernelTimes;
    this.kernelTimes = {};
    return t;
  }

  // ---------------------------------------------------------------- tensors

  private checkAlive(what: string): void {
    if (this.destroyed) throw new KernelError(what, '', 'the device was destroyed', 'device-lost');
    if (this.lost) throw new KernelError(what, '', `device lost (${this.lost.reason}): ${this.lost.message}`, 'device-lost');
  }

  private createBuffer(bytes: number, label: string): GPUBuffer {
    this.checkAlive(label);
    const max = this.limits.maxStorageBufferBindingSize;
    if (bytes > max) {
      throw new KernelError(
        label,
        '',
        `${bytes} bytes exceed maxStorageBufferBindingSize ${max} of '${this.adapter.device}'`,
        'out-of-memory',
      );
    }
    return this.device.createBuffer({
      label,
      size: Math.max(16, Math.ceil(bytes / 4) * 4),
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
  }

  /** An uninitialised f32 tensor (contents are whatever the allocator gives: zeros in practice). */
  empty(shape: readonly number[], label = 'tensor'): Tensor {
    const size = shape.reduce((a, b) => a * b, 1);
    if (!shape.every((d) => Number.isInteger(d) && d >= 0)) throw new Error(`${label}: bad shape [${shape.join(', ')}]`);
    return new Tensor(this, this.createBuffer(size * 4, label), shape);
  }

  zeros(shape: readonly number[], label = 'zeros'): Tensor {
    const t = this.empty(shape, label);
    this.fill(t, 0);
    return t;
  }

  upload(data: Float32Array | readonly number[], shape: readonly number[] = [data.length], label = 'upload'): Tensor {
    const size = shape.reduce((a, b) => a * b, 1);
    if (size !== data.length) throw new Error(`${label}: ${data.length} values do not fill shape [${shape.join(', ')}]`);
    const t = this.empty(shape, label);
    this.write(t, data);
    return t;
  }

  write(t: Tensor, data: Float32Array | readonly number[]): void {
    const f = data instanceof Float32Array ? data : Float32Array.from(data);
    if (f.length !== t.size) throw new Error(`write: ${f.length} values for a tensor of ${t.size}`);
    if (f.length) this.device.queue.writeBuffer(t.buffer, 0, f.buffer, f.byteOffset, f.byteLength);
  }

  /** Fills with one value (NaN poisons outputs so an unwritten element fails its test). */
  fill(t: Tensor, value: number): void {
    if (!t.size) return;
    const f = new Float32Array(t.size).fill(value);
    this.device.queue.writeBuffer(t.buffer, 0, f.buffer, 0, f.byteLength);
  }

  poison(t: Tensor): void {
    this.fill(t, Number.NaN);
  }

  /** Submits pending work and reads the tensor back. Rejects (never hangs) if the device is lost. */
  async read(t: Tensor): Promise<Float32Array> {
    await this.flush();
    const bytes = Math.max(16, t.size * 4);
    // Small staging buffers (a training step's loss, metrics) are reused from a free list instead of being
    // created and destroyed on every read; large ones are one-off.
    const free = bytes <= STAGING_POOL_MAX_BYTES ? this.staging.get(bytes) : undefined;
    const staging =
      free?.pop() ?? this.device.createBuffer({ label: 'readback', size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    let reusable = false;
    try {
      const enc = this.device.createCommandEncoder({ label: 'readback' });
      enc.copyBufferToBuffer(t.buffer, 0, staging, 0, bytes);
      this.device.queue.submit([enc.finish()]);
      await this.raceLost(staging.mapAsync(GPUMapMode.READ), 'readback');
      const out = new Float32Array(staging.getMappedRange().slice(0, t.size * 4));
      staging.unmap();
      reusable = bytes <= STAGING_POOL_MAX_BYTES;
      return out;
    } finally {
      const list = this.staging.get(bytes) ?? [];
      if (reusable && !this.destroyed && list.length < STAGING_POOL_PER_SIZE) {
        list.push(staging);
        this.staging.set(bytes, list);
      } else {
        staging.destroy();
      }
    }
  }

  private async raceLost<T>(p: Promise<T>, what: string): Promise<T> {
    const lost = this.device.lost.then((info) => {
      throw new KernelError(what, '', `device lost (${info.reason}): ${info.message}`, 'device-lost');
    });
    return Promise.race([p, lost]);
  }

  // ---------------------------------------------------------------- pipelines

  private layoutFor(def: KernelDef): { bgl: GPUBindGroupLayout; pl: GPUPipelineLayout } {
    const key = `${def.name}:${def.bindings.map((b) => b.access).join(',')}:${def.params.length > 0}`;
    let got = this.layouts.get(key);
    if (!got) {
      const entries: GPUBindGroupLayoutEntry[] = def.bindings.map((b, i) => ({
        binding: i,
        visibility: GPUShaderStage.COMPUTE,
        buffer: { type: b.access === 'read' ? 'read-only-storage' : 'storage' },
      }));
      if (def.params.length) {
        entries.push({ binding: def.bindings.length, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform' } });
      }
      const bgl = this.device.createBindGroupLayout({ label: def.name, entries });
      got = { bgl, pl: this.device.createPipelineLayout({ label: def.name, bindGroupLayouts: [bgl] }) };
      this.layouts.set(key, got);
    }
    return got;
  }

  /** Compiles (once per kernel name + overrides) and caches. Compilation errors throw KernelError. */
  pipeline(def: KernelDef, overrides: Readonly<Record<string, number>> = {}): Promise<GPUComputePipeline> {
    const merged = { ...(def.overrides ?? {}), ...overrides };
    const key = pipelineKey(def, merged);
    let p = this.pipelines.get(key);
    if (!p) {
      p = this.compile(def, merged, key);
      this.pipelines.set(key, p);
      p.catch(() => this.pipelines.delete(key));
    }
    return p;
  }

  private async compile(def: KernelDef, overrides: Record<string, number>, key: string): Promise<GPUComputePipeline> {
    this.checkAlive(def.name);
    for (const s of SCOPES) this.device.pushErrorScope(s);
    const module = this.device.createShaderModule({ label: def.name, code: def.source });
    const { bgl: _bgl, pl } = this.layoutFor(def);
    let pipeline: GPUComputePipeline | null = null;
    let thrown: unknown = null;
    try {
      pipeline = await this.device.createComputePipelineAsync({
        label: key,
        layout: pl,
        compute: { module, entryPoint: def.entryPoint, constants: overrides },
      });
    } catch (err) {
      thrown = err;
    }
    const errors = await Promise.all(SCOPES.map(() => this.device.popErrorScope()));
    const info = await module.getCompilationInfo();
    const diagnostics = info.messages
      .filter((m) => m.type === 'error')
      .map((m) => `${def.name}.wgsl:${m.lineNum}:${m.linePos}: ${m.message}`)
      .join('\n');
    const err = errors.find((e) => e);
    if (diagnostics || err || thrown || !pipeline) {
      const msg = diagnostics || err?.message || (thrown as Error)?.message || 'pipeline creation failed';
      throw new KernelError(def.name, `overrides ${JSON.stringify(overrides)}`, msg, diagnostics ? 'compilation' : 'validation');
    }
    return pipeline;
  }

  // ---------------------------------------------------------------- dispatch

  /** Validates, encodes one dispatch in its own error scopes, and queues it for the next flush. */
  async dispatch(def: KernelDef, args: DispatchArgs): Promise<void> {
    const shapes = args.shapes ?? args.tensors.map((t) => t.toString()).join(' ');
    this.checkAlive(def.name);
    if (args.tensors.length !== def.bindings.length) {
      throw new KernelError(
        def.name,
        shapes,
        `expected ${def.bindings.length} tensors (${def.bindings.map((b) => b.name).join(', ')}), got ${args.tensors.length}`,
        'shape',
      );
    }
    for (const t of args.tensors) {
      if (t.gpu !== this) throw new KernelError(def.name, shapes, 'a tensor belongs to another device', 'shape');
    }
    const pipeline = await this.pipeline(def, args.overrides);
    const { bgl } = this.layoutFor(def);
    const maxDim = this.limits.maxComputeWorkgroupsPerDimension;
    let [x, y = 1, z = 1] = args.grid;
    if (def.foldable) {
      if (y !== 1 || z !== 1) throw new KernelError(def.name, shapes, 'a foldable kernel takes a 1-D grid', 'shape');
      [x, y] = foldGrid(x, maxDim);
    }
    if (x > maxDim || y > maxDim || z > maxDim) {
      throw new KernelError(def.name, shapes, `grid [${x}, ${y}, ${z}] exceeds maxComputeWorkgroupsPerDimension ${maxDim}`, 'shape');
    }
    if (x === 0 || y === 0 || z === 0) return; // nothing to do for empty tensors

    if (this.arenaUsed === ARENA_SLOTS || this.pending.length >= MAX_PENDING) await this.flush();
    const entries: GPUBindGroupEntry[] = args.tensors.map((t, i) => ({ binding: i, resource: { buffer: t.buffer } }));
    if (def.params.length) {
      const slot = this.arenaUsed++;
      packParams(def.params, args.params ?? {}, this.arenaData, slot * PARAMS_SLOT_BYTES);
      entries.push({
        binding: def.bindings.length,
        resource: { buffer: this.arena, offset: slot * PARAMS_SLOT_BYTES, size: PARAMS_SLOT_BYTES },
      });
    }
    const label = `${def.name} [${shapes}]`;
    const p: Pending = { kernel: def.name, shapes, label, pipeline, layout: bgl, entries, grid: [x, y, z] };
    if (this.perDispatchScopes) {
      for (const s of SCOPES) this.device.pushErrorScope(s);
      const enc = this.device.createCommandEncoder({ label });
      this.encodePass(enc, p);
      const commandBuffer = enc.finish({ label });
      p.encoded = { commandBuffer, errors: Promise.all(SCOPES.map(() => this.device.popErrorScope())) };
    }
    this.pending.push(p);
    if (this.sync) await this.flush();
  }

  /** One compute pass with p's dispatch (timestamps at its beginning and end when given). */
  private encodePass(enc: GPUCommandEncoder, p: Pending, timestamps?: GPUComputePassTimestampWrites): void {
    const pass = enc.beginComputePass({ label: p.label, ...(timestamps ? { timestampWrites: timestamps } : {}) });
    this.encodeDispatch(pass, p);
    pass.end();
  }

  private encodeDispatch(pass: GPUComputePassEncoder, p: Pending): void {
    pass.setPipeline(p.pipeline);
    pass.setBindGroup(0, this.device.createBindGroup({ label: p.label, layout: p.layout, entries: p.entries }));
    pass.dispatchWorkgroups(...p.grid);
  }

  /**
   * A batch failed: encodes its dispatches again, one by one in their own error scopes (never submitted),
   * and throws the first one's error, naming its kernel and shapes. Falls back to the batch's error.
   */
  private async nameFailure(batch: Pending[], e: GPUError): Promise<never> {
    for (const p of batch) {
      for (const s of SCOPES) this.device.pushErrorScope(s);
      const enc = this.device.createCommandEncoder({ label: p.label });
      this.encodePass(enc, p);
      enc.finish({ label: p.label });
      const errs = await Promise.all(SCOPES.map(() => this.device.popErrorScope()));
      const own = errs.find((x) => x);
      if (own) throw new KernelError(p.kernel, p.shapes, own.message, errorKind(own));
    }
    throw new KernelError(batch.map((p) => p.kernel).join(', '), '', e.message, errorKind(e));
  }

  /** Uploads Params, submits every queued dispatch in order, and throws the first error, naming its kernel. */
  async flush(): Promise<void> {
    if (!this.pending.length) return;
    const batch = this.pending;
    this.pending = [];
    if (this.arenaUsed) {
      this.device.queue.writeBuffer(this.arena, 0, this.arenaData.buffer, 0, this.arenaUsed * PARAMS_SLOT_BYTES);
      this.arenaUsed = 0;
    }
    let commandBuffers: GPUCommandBuffer[];
    let querySet: GPUQuerySet | null = null;
    let resolved: GPUBuffer | null = null;
    let raw: GPUBuffer | null = null;
    if (batch.every((p) => p.encoded)) {
      // Check encoding errors before submitting: an invalid command buffer would poison the whole submit.
      const results = await Promise.all(batch.map((p) => p.encoded!.errors));
      results.forEach((errs, i) => {
        const e = errs.find((x) => x);
        if (e) throw new KernelError(batch[i]!.kernel, batch[i]!.shapes, e.message, errorKind(e));
      });
      commandBuffers = batch.map((p) => p.encoded!.commandBuffer);
    } else {
      for (const s of SCOPES) this.device.pushErrorScope(s);
      const enc = this.device.createCommandEncoder({ label: 'emofuse batch' });
      if (this.profiling) {
        querySet = this.device.createQuerySet({ type: 'timestamp', count: 2 * batch.length });
        for (const [i, p] of batch.entries()) {
          this.encodePass(enc, p, { querySet: querySet!, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 });
        }
        const bytes = 16 * batch.length;
        raw = this.device.createBuffer({ size: bytes, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
        resolved = this.device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
        enc.resolveQuerySet(querySet, 0, 2 * batch.length, raw, 0);
        enc.copyBufferToBuffer(raw, 0, resolved, 0, bytes);
      } else {
        const pass = enc.beginComputePass({ label: 'emofuse batch' });
        for (const p of batch) this.encodeDispatch(pass, p);
        pass.end();
      }
      commandBuffers = [enc.finish({ label: 'emofuse batch' })];
      const errs = await Promise.all(SCOPES.map(() => this.device.popErrorScope()));
      const e = errs.find((x) => x);
      if (e) await this.nameFailure(batch, e);
    }
    for (const s of SCOPES) this.device.pushErrorScope(s);
    this.device.queue.submit(commandBuffers);
    const submitErrors = await Promise.all(SCOPES.map(() => this.device.popErrorScope()));
    const e = submitErrors.find((x) => x);
    if (e) throw new KernelError(batch.map((p) => p.kernel).join(', '), '', e.message, 'validation');
    if (resolved) {
      await this.raceLost(resolved.mapAsync(GPUMapMode.READ), 'timestamps');
      const ts = new BigInt64Array(resolved.getMappedRange().slice(0));
      resolved.unmap();
      resolved.destroy();
      raw!.destroy();
      querySet!.destroy();
      batch.forEach((p, i) => {
        this.kernelTimes[p.kernel] ??= { dispatches: 0, gpuMs: 0 };
        const t = this.kernelTimes[p.kernel];
        t.dispatches++;
        t.gpuMs += Math.max(0, Number(ts[2 * i + 1]! - ts[2 * i]!)) / 1e6;
      });
    }
  }

  /** Submits and waits for the GPU to finish everything queued (what timings wrap). */
  async finish(): Promise<void> {
    await this.flush();
    await this.raceLost(this.device.queue.onSubmittedWorkDone(), 'onSubmittedWorkDone');
  }

  /** Waits for queued work, destroys the device, and drops the Dawn instance so Node can exit. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    try {
      if (!this.lost) await this.finish();
    } finally {
      this.destroyed = true;
      this.pipelines.clear();
      this.layouts.clear();
      this.arena.destroy();
      for (const list of this.staging.values()) for (const b of list) b.destroy();
      this.staging.clear();
      this.device.destroy();
      if (this.instance && this.adapter.backend !== 'browser') releaseInstance(this.instance);
      this.instance = null;
    }
  }
}
