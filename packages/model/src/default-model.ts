// The shipped default model: the checkpoint `predict`, `analyze`, `EmotionClassifier.load()` (and, once its encoders
// run in the page, the demo) use when no checkpoint is given. It lives in the model package's assets, so an installed
// @emofuse/model carries it; scripts/train-default.sh makes it from the offline assets, and docs/model-card.md is its
// card (data, licences, encoders, scores, limits).

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { repoRoot } from './encoders/settings.ts';

export interface DefaultModelInfo {
  /** What it is called where it is named (outputs, messages). */
  name: string;
  /** Its file: beside this package (installed) or in the repo. */
  file: string;
  /** One line a user sees when it is used. */
  summary: string;
  /** The data's licence terms, which the model inherits. */
  licence: string;
}

const PACKAGED = fileURLToPath(new URL('../assets/default-model/emofuse-default.safetensors', import.meta.url));
const IN_REPO = join(repoRoot, 'packages', 'model', 'assets', 'default-model', 'emofuse-default.safetensors');

export const DEFAULT_MODEL: DefaultModelInfo = {
  name: 'emofuse-default',
  file: existsSync(PACKAGED) ? PACKAGED : IN_REPO,
  summary:
    "emofuse's shipped default model: MELD's 7 emotions from English acted speech (RAVDESS actors 01-16), German acted speech " +
    '(EmoDB train speakers) and TV dialogue text (MELD train); text all-MiniLM-L6-v2, audio Whisper tiny.en; each speaker ' +
    "standardized by their own statistics where several clips are known (a lone clip: the train speakers'); see docs/model-card.md",
  licence: 'CC BY-NC-SA 4.0 (trained on RAVDESS): non-commercial use, share-alike',
};

/** A clear message when the shipped model's file is missing (a damaged install or checkout). */
export function defaultModelMissing(): string {
  return (
    `the shipped default model ${DEFAULT_MODEL.file} is missing: reinstall emofuse (or 'git checkout -- ` +
    `packages/model/assets/default-model'), or pass --checkpoint <file> from 'emofuse train'`
  );
}

/** The fix when the shipped model's file is damaged (its checksum or layout does not hold). */
export function defaultModelDamagedFix(): string {
  return "reinstall emofuse (or 'git checkout -- packages/model/assets/default-model'), or pass --checkpoint <file> from 'emofuse train'";
}
