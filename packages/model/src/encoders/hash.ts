// `hash`: a frozen feature-hashing text encoder that needs no download. Text is split into BERT WordPiece tokens
// (bert-base-uncased's ids, from the vocabulary shipped in packages/model/assets/bert-base-uncased/vocab.txt,
// Apache-2.0), and every token id maps to a fixed pseudo-random vector (seeded by the id), so equal tokens always
// get equal vectors. Tokens include [CLS] and [SEP], as BERT's would.

import { join, basename, dirname } from 'node:path';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { mulberry32 } from '@emofuse/kernels';
import { modelSettings, repoRoot } from './settings.ts';
import { padSequences, type EncodedBatch, type TextEncoder } from './types.ts';
import { loadTransformers } from './transformers-env.ts';
import { loadWordPiece } from './wordpiece.ts';
import { ModelNotFoundError } from './transformers.ts';

/**
 * The bert-base-uncased vocabulary shipped with the model package (no download, no ../shared needed): beside this
 * module's package (its sources, dist/, or an installed @emofuse/model), else in the repo (the CLI bundle).
 */
const PACKAGED_VOCAB = fileURLToPath(new URL('../../assets/bert-base-uncased/vocab.txt', import.meta.url));
export const BERT_VOCAB_FILE = existsSync(PACKAGED_VOCAB)
  ? PACKAGED_VOCAB
  : join(repoRoot, 'packages', 'model', 'assets', 'bert-base-uncased', 'vocab.txt');

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

/**
 * The BERT uncased tokenizer: our WordPiece over the shipped vocab.txt; where that file cannot be read (the
 * browser demo, which serves only the offline assets), transformers.js over tokenizer-bert-base-uncased/ in the
 * assets. Never the hub: the default text encoder must work offline.
 */
export async function loadBertTokenizer(): Promise<Tokenizer> {
  if (existsSync(BERT_VOCAB_FILE)) return loadWordPiece(BERT_VOCAB_FILE);
  const folder = join(modelSettings.assetsDir, 'tokenizer-bert-base-uncased');
  if (existsSync(join(folder, 'tokenizer.json'))) {
    const { AutoTokenizer, env } = await loadTransformers();
    const saved = { localModelPath: env.localModelPath, allowRemoteModels: env.allowRemoteModels };
    env.localModelPath = dirname(folder) + '/';
    env.allowRemoteModels = false;
    try {
      return (await AutoTokenizer.from_pretrained(basename(folder))) as unknown as Tokenizer;
    } finally {
      Object.assign(env, saved);
    }
  }
  throw new ModelNotFoundError(
    `the 'hash' text encoder needs the BERT vocabulary: neither ${BERT_VOCAB_FILE} (shipped with emofuse: restore it with ` +
      `'git checkout -- packages/model/assets') nor ${join(folder, 'tokenizer.json')} exists`,
  );
}

export async function createHashEncoder(dim = HASH_DIM): Promise<TextEncoder> {
  const tokenizer = await loadBertTokenizer();
  const table = new Map<number, Float32Array>();
  const vectorOf = (id: number) => {
    let v = table.get(id);
    if (!v) {
      v = hashVector(id, dim);
      table.set(id, v);
    }
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
        for (const [t, id] of ids.entries()) data.set(vectorOf(id), t * dim);
        return { data, length: ids.length };
      });
      return padSequences(seqs, dim);
    },
  };
}
