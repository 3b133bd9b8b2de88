// `hash`: a frozen feature-hashing text encoder that needs no download. Text is split into BERT WordPiece tokens
// by the real bert-base-uncased tokenizer (transformers.js AutoTokenizer, loaded from disk), and every token id
// maps to a fixed pseudo-random vector (seeded by the id), so equal tokens always get equal vectors.
// Tokens include [CLS] and [SEP], as BERT's would.

import { join, basename, dirname } from 'node:path';
import { existsSync } from 'node:fs';
import { mulberry32 } from '@emofuse/kernels';
import { modelSettings } from './settings.ts';
import { padSequences, type EncodedBatch, type TextEncoder } from './types.ts';
import { loadTransformers } from './transformers-env.ts';

export const HASH_DIM = 256;
export const HASH_MAX_TOKENS = 128;

/** The fixed vector of one token id: dim standard normal values (Box-Muller over a seeded generator). */
export function hashVector(tokenId: number, dim = HASH_DIM): Float32Array {
  const rand = mulberry32(Math.imul(tokenId + 1, 0x9e3779b1) ^ 0x5bd1e995);
  const v = new Float32Array(dim);
  for (let i = 0; i < dim; i += 2) {
    const u1 = Math.max(rand(), 1e-12);
    const u2 = rand();
    const r = Math.sqrt(-2 * Math.log(u1));
    v[i] = r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < dim) v[i + 1] = r * Math.sin(2 * Math.PI * u2);
  }
  return v;
}

type Tokenizer = { encode(text: string, options?: { add_special_tokens?: boolean }): number[] };

/** The BERT uncased tokenizer from the offline assets, or by name from the hub when remote models are allowed. */
export async function loadBertTokenizer(): Promise<Tokenizer> {
  const folder = join(modelSettings.assetsDir, 'tokenizer-bert-base-uncased');
  const { AutoTokenizer, env } = await loadTransformers();
  if (existsSync(join(folder, 'tokenizer.json'))) {
    const saved = { localModelPath: env.localModelPath, allowRemoteModels: env.allowRemoteModels };
    env.localModelPath = dirname(folder) + '/';
    env.allowRemoteModels = false;
    try {
      return (await AutoTokenizer.from_pretrained(basename(folder))) as unknown as Tokenizer;
    } finally {
      Object.assign(env, saved);
    }
  }
  if (modelSettings.offline) {
    throw new Error(
      `the 'hash' text encoder needs the BERT tokenizer: none in ${folder} and EMOFUSE_OFFLINE is set. ` +
        `Point EMOFUSE_ASSETS at a folder holding tokenizer-bert-base-uncased/, or unset EMOFUSE_OFFLINE to download Xenova/bert-base-uncased's tokenizer.`,
    );
  }
  return (await AutoTokenizer.from_pretrained('Xenova/bert-base-uncased')) as unknown as Tokenizer;
}

export async function createHashEncoder(dim = HASH_DIM): Promise<TextEncoder> {
  const tokenizer = await loadBertTokenizer();
  const table = new Map<number, Float32Array>();
  const vectorOf = (id: number) => {
    let v = table.get(id);
    if (!v) table.set(id, (v = hashVector(id, dim)));
    return v;
  };
  return {
    modality: 'text',
    id: dim === HASH_DIM ? 'hash' : `hash:${dim}`,
    version: 'hash-v1:mulberry32-boxmuller:bert-base-uncased-wordpiece',
    dim,
    async encode(texts: readonly string[]): Promise<EncodedBatch> {
      const seqs = texts.map((text) => {
        let ids = tokenizer.encode(text);
        if (ids.length > HASH_MAX_TOKENS) ids = [...ids.slice(0, HASH_MAX_TOKENS - 1), ids[ids.length - 1]!];
        const data = new Float32Array(ids.length * dim); // [T, C]
        ids.forEach((id, t) => data.set(vectorOf(id), t * dim));
        return { data, length: ids.length };
      });
      return padSequences(seqs, dim);
    },
  };
}
