// The text encoder as trainable layers (issue 22): a BERT encoder (all-MiniLM-L6-v2 is one: width 384, 12 heads,
// 6 blocks) written against the same Backend as the fusion model (./backend.ts), so it trains on wgsl, ort and cpu.
// Reads top to bottom: config, parameters, activations, forward, backward. Every tensor line carries its shape.
//
//   embeddings: e = word[ids] + pos[t] + type[typeIds]      [B, T, C]   (three gathers, ./backend.ts embedding)
//               x0 = LN_emb(e)                               [B, T, C]
//   block l:    h1 = LN1(x + Wo attention(Wq x, Wk x, Wv x; key mask))       post-LN, BERT's block form
//               y  = LN2(h1 + W2 gelu(W1 h1))                [B, T, C]   gelu of config.gelu
//   output:     the last block's y: the token states the fusion head reads (HF's last_hidden_state).
//
// Fine-tuning trains the top `trainTop` blocks (all of them, and the embeddings, with trainTop = layers + 1); the
// rest is frozen: it has no gradient buffers and the backward stops below the lowest trained block.
// GELU is config.gelu: 'erf', BERT's exact form, for a converted model (readBertWeights), so the forward is the ONNX
// BertModel's: test/model/text-encoder.test.ts measures max |ours - onnx| on real sentences (states up to 5.8) at
// float32 rounding on ort, cpu and wgsl; 'tanh' (the backends' other form, 4.3e-3 off) only for deltas fine-tuned
// with it before the erf form existed (their metadata records no form). Layer norms use the config's eps.
//
// Dimensions: B batch, T tokens (the batch's padded length, at most maxLen), C width, H heads, F ffn width, V vocab.
// Linear weights are stored [in, out] (the ONNX MatMul layout), every linear has a bias.

import { DataError } from '../errors.ts';
import type { Backend, BTensor, GeluForm } from './backend.ts';

/** A BERT encoder's shape (config.json of a transformers.js BERT, or a toy for tests). */
export interface TextEncoderConfig {
  vocab: number; // V
  maxPositions: number;
  typeVocab: number;
  width: number; // C
  heads: number; // H
  layers: number; // L
  ffn: number; // F
  layerNormEps: number;
  /** The feed-forward's GELU: 'erf' (BERT's, exact) or 'tanh' (deltas fine-tuned before the erf form existed). */
  gelu: GeluForm;
}

/**
 * The GELU form a saved fine-tuned encoder ran with, from its file's metadata 'gelu' (written from config.gelu): a
 * file without one was trained before the erf form existed, with 'tanh', and runs as trained.
 */
export function savedGeluForm(metadata: Readonly<Record<string, string | undefined>>, file: string): GeluForm {
  const g = metadata.gelu;
  if (g === undefined) return 'tanh';
  if (g === 'erf' || g === 'tanh') return g;
  throw new DataError(
    `${file}: metadata 'gelu' is ${JSON.stringify(g)}, expected 'erf' or 'tanh': the file is damaged or newer than this emofuse`,
  );
}

/** One parameter; frozen ones have no gradient or moments. `layer`: -1 embeddings, l block l. */
export interface EncoderParam {
  name: string;
  shape: number[];
  value: BTensor;
  grad?: BTensor;
  m?: BTensor;
  v?: BTensor;
  decay: boolean;
  layer: number;
}

interface Linear {
  w: EncoderParam; // [in, out]
  b: EncoderParam; // [out]
  inDim: number;
  outDim: number;
}

interface Block {
  q: Linear;
  k: Linear;
  v: Linear;
  o: Linear;
  ln1g: EncoderParam;
  ln1b: EncoderParam;
  ff1: Linear;
  ff2: Linear;
  ln2g: EncoderParam;
  ln2b: EncoderParam;
}

/** What one block saves for its backward, and its gradient scratch. */
interface BlockActs {
  q: BTensor; // [B, T, C]
  k: BTensor;
  v: BTensor;
  att: BTensor; // [B, T, C]
  lse: BTensor; // [B, H, T]
  o: BTensor; // [B, T, C]
  r1: BTensor; // [B, T, C]
  h1: BTensor;
  mean1: BTensor; // [B * T]
  rstd1: BTensor;
  fpre: BTensor; // [B, T, F]
  f: BTensor;
  f2: BTensor; // [B, T, C]
  r2: BTensor;
  y: BTensor; // [B, T, C]  the block's output
  mean2: BTensor; // [B * T]
  rstd2: BTensor;
  dy: BTensor; // [B, T, C]  gradient of y
  dr2: BTensor;
  df: BTensor; // [B, T, F]
  dfpre: BTensor;
  dh1: BTensor; // [B, T, C]
  dr1: BTensor;
  datt: BTensor;
  dq: BTensor;
  dk: BTensor;
  dv: BTensor;
}

/** Every buffer of one (B, T). */
export interface TextEncoderActs {
  B: number;
  T: number;
  storage: Map<string, BTensor>;
  ids: BTensor; // [B * T]  token ids (float)
  posIds: BTensor; // [B * T]  0..T-1 per row
  typeIds: BTensor; // [B * T]
  mask: BTensor; // [B, T]  1 token / 0 padding
  e: BTensor; // [B, T, C]  the summed embeddings
  eTmp: BTensor; // [B, T, C]  one gathered table
  x0: BTensor; // [B, T, C]  LN_emb(e)
  mean0: BTensor; // [B * T]
  rstd0: BTensor;
  dx0: BTensor; // [B, T, C]
  de: BTensor; // [B, T, C]
  blocks: BlockActs[];
  /** The encoder's output [B, T, C] (the last block's y) and its gradient, written by the head. */
  out: BTensor;
  dout: BTensor;
}

/** Every activation is step scratch (the fusion head reads `out` inside the step). */
export class TrainableTextEncoder {
  readonly params: EncoderParam[] = [];
  private word!: EncoderParam; // [V, C]
  private pos!: EncoderParam; // [maxPositions, C]
  private type!: EncoderParam; // [typeVocab, C]
  private lnEg!: EncoderParam; // [C]
  private lnEb!: EncoderParam;
  private blocks: Block[] = [];
  private acts = new Map<string, TextEncoderActs>();
  /** The longest batch seen: shorter batches are views of its activations. */
  private maxLen: number;

  private constructor(
    readonly backend: Backend,
    readonly config: TextEncoderConfig,
    /** Blocks trained, counted from the top (0: frozen; layers + 1: every block and the embeddings). */
    readonly trainTop: number,
    maxLen: number,
  ) {
    this.maxLen = maxLen;
  }

  /**
   * An encoder with the given weights by name (HF names: embeddings.word_embeddings.weight, encoder.layer.0.attention.
   * self.query.weight [in, out], ...; missing names are initialised randomly from `seed` (tests use a toy so).
   */
  static create(
    backend: Backend,
    config: TextEncoderConfig,
    opts: { trainTop?: number; maxLen?: number; weights?: ReadonlyMap<string, ArrayLike<number>>; seed?: number } = {},
  ): TrainableTextEncoder {
    const c = config;
    if (c.width % c.heads !== 0) throw new Error(`text encoder: width ${c.width} is not divisible by ${c.heads} heads`);
    if (c.gelu !== 'erf' && c.gelu !== 'tanh') throw new Error(`text encoder: gelu must be 'erf' or 'tanh', got ${JSON.stringify(c.gelu)}`);
    const trainTop = opts.trainTop ?? 0;
    if (!Number.isInteger(trainTop) || trainTop < 0 || trainTop > c.layers + 1)
      throw new Error(`text encoder: trainTop must be an integer in 0..${c.layers + 1}, got ${trainTop}`);
    const enc = new TrainableTextEncoder(backend, config, trainTop, Math.min(opts.maxLen ?? 128, c.maxPositions));
    enc.build(opts.weights, opts.seed ?? 0);
    return enc;
  }

  /** Whether block l (-1: the embeddings) is trained. */
  trains(layer: number): boolean {
    return layer >= this.config.layers - this.trainTop;
  }

  /** The trained parameters (those with gradients), in order. */
  get trainable(): EncoderParam[] {
    return this.params.filter((p) => p.grad);
  }

  private build(weights: ReadonlyMap<string, ArrayLike<number>> | undefined, seed: number): void {
    const c = this.config;
    const [C, F] = [c.width, c.ffn];
    let s = (seed * 2654435761 + 12345) >>> 0; // a tiny LCG for toy initialisation (tests): N(0, 0.02^2)-like uniform
    const rand = () => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      return (s / 2 ** 32 - 0.5) * 0.07;
    };
    const param = (name: string, shape: number[], layer: number, init: 'rand' | 'ones' | 'zeros'): EncoderParam => {
      const n = shape.reduce((a, b) => a * b, 1);
      let data = weights?.get(name);
      if (data && data.length !== n) throw new Error(`text encoder weight '${name}': ${data.length} values, expected ${n} [${shape}]`);
      if (!data) {
        if (weights) throw new Error(`text encoder weights: no '${name}' [${shape.join(', ')}]`);
        const d = new Float32Array(n);
        if (init === 'ones') d.fill(1);
        if (init === 'rand') for (let i = 0; i < n; i++) d[i] = rand();
        data = d;
      }
      const be = this.backend;
      const train = this.trains(layer);
      const p: EncoderParam = {
        name,
        shape,
        value: be.upload(data, shape, `text.${name}`),
        decay: shape.length > 1 && layer >= 0, // matrices of the blocks (not the embedding tables, norms, biases)
        layer,
        ...(train
          ? { grad: be.zeros(shape, `d text.${name}`), m: be.zeros(shape, `m text.${name}`), v: be.zeros(shape, `v text.${name}`) }
          : {}),
      };
      this.params.push(p);
      return p;
    };
    const linear = (name: string, inDim: number, outDim: number, layer: number): Linear => ({
      w: param(`${name}.weight`, [inDim, outDim], layer, 'rand'),
      b: param(`${name}.bias`, [outDim], layer, 'rand'),
      inDim,
      outDim,
    });
    this.word = param('embeddings.word_embeddings.weight', [c.vocab, C], -1, 'rand');
    this.pos = param('embeddings.position_embeddings.weight', [c.maxPositions, C], -1, 'rand');
    this.type = param('embeddings.token_type_embeddings.weight', [c.typeVocab, C], -1, 'rand');
    this.lnEg = param('embeddings.LayerNorm.weight', [C], -1, 'ones');
    this.lnEb = param('embeddings.LayerNorm.bias', [C], -1, 'zeros');
    for (let l = 0; l < c.layers; l++) {
      const n = `encoder.layer.${l}`;
      this.blocks.push({
        q: linear(`${n}.attention.self.query`, C, C, l),
        k: linear(`${n}.attention.self.key`, C, C, l),
        v: linear(`${n}.attention.self.value`, C, C, l),
        o: linear(`${n}.attention.output.dense`, C, C, l),
        ln1g: param(`${n}.attention.output.LayerNorm.weight`, [C], l, 'ones'),
        ln1b: param(`${n}.attention.output.LayerNorm.bias`, [C], l, 'zeros'),
        ff1: linear(`${n}.intermediate.dense`, C, F, l),
        ff2: linear(`${n}.output.dense`, F, C, l),
        ln2g: param(`${n}.output.LayerNorm.weight`, [C], l, 'ones'),
        ln2b: param(`${n}.output.LayerNorm.bias`, [C], l, 'zeros'),
      });
    }
  }

  // ---------------------------------------------------------------------------------------------- activations

  /** Activations of a batch of B rows at T tokens: allocated at maxLen, a shorter batch's are views of them. */
  actsFor(B: number, T: number): TextEncoderActs {
    if (T < 1 || T > this.maxLen) throw new Error(`text encoder: ${T} tokens per row, at most ${this.maxLen}`);
    const key = `${B}:${T}`;
    let a = this.acts.get(key);
    if (a) return a;
    const c = this.config;
    const [C, F] = [c.width, c.ffn];
    const full = T === this.maxLen ? undefined : this.actsFor(B, this.maxLen);
    const storage = new Map<string, BTensor>();
    const z = (shape: number[], label: string) => {
      const t = full ? this.backend.view(full.storage.get(label)!, shape) : this.backend.zeros(shape, label);
      storage.set(label, t);
      return t;
    };
    const block = (n: string): BlockActs => ({
      q: z([B, T, C], `${n}.q`),
      k: z([B, T, C], `${n}.k`),
      v: z([B, T, C], `${n}.v`),
      att: z([B, T, C], `${n}.att`),
      lse: z([B, c.heads, T], `${n}.lse`),
      o: z([B, T, C], `${n}.o`),
      r1: z([B, T, C], `${n}.r1`),
      h1: z([B, T, C], `${n}.h1`),
      mean1: z([B * T], `${n}.mean1`),
      rstd1: z([B * T], `${n}.rstd1`),
      fpre: z([B, T, F], `${n}.fpre`),
      f: z([B, T, F], `${n}.f`),
      f2: z([B, T, C], `${n}.f2`),
      r2: z([B, T, C], `${n}.r2`),
      y: z([B, T, C], `${n}.y`),
      mean2: z([B * T], `${n}.mean2`),
      rstd2: z([B * T], `${n}.rstd2`),
      dy: z([B, T, C], `${n}.dy`),
      dr2: z([B, T, C], `${n}.dr2`),
      df: z([B, T, F], `${n}.df`),
      dfpre: z([B, T, F], `${n}.dfpre`),
      dh1: z([B, T, C], `${n}.dh1`),
      dr1: z([B, T, C], `${n}.dr1`),
      datt: z([B, T, C], `${n}.datt`),
      dq: z([B, T, C], `${n}.dq`),
      dk: z([B, T, C], `${n}.dk`),
      dv: z([B, T, C], `${n}.dv`),
    });
    const blocks = this.blocks.map((_, l) => block(`text.${l}`));
    const last = blocks[blocks.length - 1];
    const x0 = z([B, T, C], 'text.x0');
    const dx0 = z([B, T, C], 'text.dx0');
    a = {
      B,
      T,
      storage,
      ids: z([B * T], 'in.textIds'),
      posIds: z([B * T], 'in.textPos'),
      typeIds: z([B * T], 'in.textType'),
      mask: z([B, T], 'in.textIdsMask'),
      e: z([B, T, C], 'text.e'),
      eTmp: z([B, T, C], 'text.eTmp'),
      x0,
      mean0: z([B * T], 'text.mean0'),
      rstd0: z([B * T], 'text.rstd0'),
      dx0,
      de: z([B, T, C], 'text.de'),
      blocks,
      out: last ? last.y : x0,
      dout: last ? last.dy : dx0,
    };
    this.backend.scratch?.([...storage.values()]);
    this.acts.set(key, a);
    return a;
  }

  /**
   * Writes one batch's token ids [B, T] and mask [B, T] (1 token / 0 padding; BERT pads on the right), with positions
   * 0..T-1 and token type 0 (single sentences). Ids must be rows of the vocabulary.
   */
  setInputs(ids: ArrayLike<number>, mask: ArrayLike<number>, B: number): TextEncoderActs {
    const T = ids.length / B;
    if (!Number.isInteger(T) || mask.length !== ids.length)
      throw new Error(`text encoder: ${ids.length} ids and ${mask.length} mask values for ${B} rows`);
    const V = this.config.vocab;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (!Number.isInteger(id) || id < 0 || id >= V)
        throw new Error(`text encoder: token id ${id} at [${Math.floor(i / T)}, ${i % T}] is not in 0..${V - 1}`);
    }
    const a = this.actsFor(B, T);
    const be = this.backend;
    be.write(a.ids, ids);
    be.write(
      a.posIds,
      Float32Array.from({ length: B * T }, (_, i) => i % T),
    );
    be.write(a.typeIds, new Float32Array(B * T));
    be.write(a.mask, mask);
    return a;
  }

  // ---------------------------------------------------------------------------------------------- forward

  private async linear(l: Linear, x: BTensor, y: BTensor, rows: number, opts: { gelu?: GeluForm; pre?: BTensor } = {}): Promise<void> {
    await this.backend.matmul(x, l.w.value, y, { batch: 1, M: rows, N: l.outDim, K: l.inDim }, { bias: l.b.value, ...opts });
  }

  /** Token states a.out [B, T, C] from the ids written by setInputs. */
  async forward(a: TextEncoderActs): Promise<BTensor> {
    const be = this.backend;
    const eps = this.config.layerNormEps;
    const rows = a.B * a.T;
    await be.embedding(a.ids, this.word.value, a.e); // e [B, T, C] = word[ids]
    await be.embedding(a.posIds, this.pos.value, a.eTmp); // pos[t]
    await be.axpy(a.eTmp, a.e); // e += pos
    await be.embedding(a.typeIds, this.type.value, a.eTmp); // type[typeIds]
    await be.axpy(a.eTmp, a.e); // e += type
    await be.layerNorm(a.e, this.lnEg.value, this.lnEb.value, a.x0, a.mean0, a.rstd0, eps); // x0 [B, T, C]
    let x = a.x0;
    for (const [l, blk] of this.blocks.entries()) {
      const b = a.blocks[l]!;
      await this.linear(blk.q, x, b.q, rows); // q [B, T, C]
      await this.linear(blk.k, x, b.k, rows); // k [B, T, C]
      await this.linear(blk.v, x, b.v, rows); // v [B, T, C]
      await be.attention(b.q, b.k, b.v, a.mask, b.att, b.lse, this.config.heads); // att [B, T, C], lse [B, H, T]
      await this.linear(blk.o, b.att, b.o, rows); // o [B, T, C]
      await be.add(x, b.o, b.r1); // r1 = x + o
      await be.layerNorm(b.r1, blk.ln1g.value, blk.ln1b.value, b.h1, b.mean1, b.rstd1, eps); // h1 [B, T, C]
      await this.linear(blk.ff1, b.h1, b.f, rows, { gelu: this.config.gelu, pre: b.fpre }); // f = gelu(fpre) [B, T, F]
      await this.linear(blk.ff2, b.f, b.f2, rows); // f2 [B, T, C]
      await be.add(b.h1, b.f2, b.r2); // r2 = h1 + f2
      await be.layerNorm(b.r2, blk.ln2g.value, blk.ln2b.value, b.y, b.mean2, b.rstd2, eps); // y [B, T, C]
      x = b.y;
    }
    return a.out;
  }

  // ---------------------------------------------------------------------------------------------- backward

  /** Gradients (overwritten) of the trained parameters from a.dout [B, T, C]; stops below the lowest trained block. */
  async backward(a: TextEncoderActs): Promise<void> {
    const be = this.backend;
    const rows = a.B * a.T;
    const lin = (l: Linear, x: BTensor, dy: BTensor, dx?: BTensor, accumulateA = false) =>
      be.matmulBackward(
        { dc: dy, a: x, b: l.w.value, dA: dx, dB: l.w.grad!, dBias: l.b.grad! },
        { batch: 1, M: rows, N: l.outDim, K: l.inDim },
        { accumulateA },
      );
    for (let l = this.blocks.length - 1; l >= 0 && this.trains(l); l--) {
      const [blk, b] = [this.blocks[l]!, a.blocks[l]!];
      const x = l === 0 ? a.x0 : a.blocks[l - 1]!.y; // the block's input [B, T, C]
      const below = l === 0 ? this.trains(-1) : this.trains(l - 1); // does anything below need dx?
      const dx = below ? (l === 0 ? a.dx0 : a.blocks[l - 1]!.dy) : undefined;
      await be.layerNormBackward(b.r2, blk.ln2g.value, b.mean2, b.rstd2, b.dy, b.dr2, blk.ln2g.grad!, blk.ln2b.grad!); // dr2 [B, T, C]
      await lin(blk.ff2, b.f, b.dr2, b.df); // df [B, T, F]
      await be.geluBackward(b.fpre, b.df, b.dfpre, false, this.config.gelu); // dfpre [B, T, F]
      await lin(blk.ff1, b.h1, b.dfpre, b.dh1); // dh1 [B, T, C]
      await be.axpy(b.dr2, b.dh1); // dh1 += dr2 (residual)
      await be.layerNormBackward(b.r1, blk.ln1g.value, b.mean1, b.rstd1, b.dh1, b.dr1, blk.ln1g.grad!, blk.ln1b.grad!); // dr1 [B, T, C]
      await lin(blk.o, b.att, b.dr1, b.datt); // datt [B, T, C]
      await be.attentionBackward(b.q, b.k, b.v, a.mask, b.att, b.lse, b.datt, b.dq, b.dk, b.dv, this.config.heads); // dq, dk, dv
      await lin(blk.q, x, b.dq, dx); // dx = dq @ Wq^T
      await lin(blk.k, x, b.dk, dx, true); // dx += dk @ Wk^T
      await lin(blk.v, x, b.dv, dx, true); // dx += dv @ Wv^T
      if (dx) await be.axpy(b.dr1, dx); // dx += dr1 (residual)
    }
    if (!this.trains(-1)) return;
    // embeddings: dx0 -> de through LN_emb, then each table's scatter-add
    await be.layerNormBackward(a.e, this.lnEg.value, a.mean0, a.rstd0, a.dx0, a.de, this.lnEg.grad!, this.lnEb.grad!); // de [B, T, C]
    await be.embeddingBackward(a.ids, a.de, this.word.grad!); // d word [V, C]
    await be.embeddingBackward(a.posIds, a.de, this.pos.grad!); // d pos [maxPositions, C]
    await be.embeddingBackward(a.typeIds, a.de, this.type.grad!); // d type [typeVocab, C]
  }

  // ---------------------------------------------------------------------------------------------- state

  /** Every parameter's value read back (checkpoints, tests). */
  async readState(): Promise<Map<string, Float32Array>> {
    const out = new Map<string, Float32Array>();
    for (const p of this.params) out.set(p.name, Float32Array.from(await this.backend.read(p.value)));
    return out;
  }
}
