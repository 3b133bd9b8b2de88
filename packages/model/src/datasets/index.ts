// Datasets by name: 'manifest' (CSV/JSONL), 'emodb', 'meld', 'ravdess', 'crema-d', 'controlled' (the generated
// bimodal benchmark); the FeatureSets that need no extraction (feature-sets.ts: generated, JSON arrays); and label
// maps onto one class set across corpora (label-map.ts).

import { readEmoDB } from './emodb.ts';
import { readManifest } from './manifest.ts';
import { readMELD } from './meld.ts';
import { readRAVDESS } from './ravdess.ts';
import { readCremaD } from './crema-d.ts';
import { CONTROLLED_CLASSES } from './controlled.ts';
import { DatasetError, type Dataset } from './types.ts';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';

export * from './types.ts';
export * from './manifest.ts';
export * from './emodb.ts';
export * from './meld.ts';
export * from './ravdess.ts';
export * from './crema-d.ts';
export * from './label-map.ts';
export * from './controlled.ts';
export * from './feature-sets.ts';

export const DATASETS = ['manifest', 'emodb', 'meld', 'ravdess', 'crema-d', 'controlled'] as const;

export interface OpenDatasetOptions {
  textOnly?: boolean;
}

export function openDataset(kind: string, data: string, options: OpenDatasetOptions = {}): Dataset {
  switch (kind) {
    case 'manifest':
    case 'controlled': {
      const file =
        existsSync(data) && statSync(data).isDirectory()
          ? ['manifest.jsonl', 'manifest.csv'].map((f) => join(data, f)).find(existsSync)
          : data;
      if (!file) throw new DatasetError(data, 'no manifest.jsonl or manifest.csv in this folder');
      const ds = readManifest(file, { textOnly: options.textOnly, ...(kind === 'controlled' ? { classNames: CONTROLLED_CLASSES } : {}) });
      return kind === 'controlled' ? { ...ds, name: 'controlled' } : ds;
    }
    case 'emodb':
      return readEmoDB(data, options);
    case 'meld':
      return readMELD(data, options);
    case 'ravdess':
      return readRAVDESS(data, options);
    case 'crema-d':
      return readCremaD(data, options);
    default:
      throw new DatasetError(data, `unknown dataset kind '${kind}': use one of ${DATASETS.join(', ')}`);
  }
}
