// Does a checkpoint fit a feature set? The same widths (the same encoders) and the same classes in the same
// order; otherwise a message that names both sides and the fix.

import type { FeatureSet } from './features.ts';
import type { CheckpointMeta } from './train/checkpoint.ts';
import { DataError } from './errors.ts';

/** A checkpoint used with features it was not trained on. */
export class CheckpointMismatchError extends DataError {
  override name = 'CheckpointMismatchError';
}

/**
 * Throws a CheckpointMismatchError unless `features` are as wide as the checkpoint's inputs and labelled with its
 * classes in the same order. `checkpoint` and `source` name the two sides in the message.
 */
export function checkCheckpointFeatures(
  meta: CheckpointMeta,
  features: Pick<FeatureSet, 'textDim' | 'audioDim' | 'classNames'> & Partial<Pick<FeatureSet, 'textEncoder' | 'audioEncoder'>>,
  checkpoint: string,
  source: string,
): void {
  const c = meta.config;
  if (c.textDim !== features.textDim || c.audioDim !== features.audioDim) {
    throw new CheckpointMismatchError(
      `${checkpoint} expects features ${c.textDim} (text) x ${c.audioDim} (audio) wide (encoders ${meta.textEncoder}, ` +
        `${meta.audioEncoder}); ` +
        `${source} has ${features.textDim} x ${features.audioDim}: use features extracted with the checkpoint's encoders`,
    );
  }
  // Equal widths from different encoders (e.g. two 256-d ones) would score silently wrong: the ids must agree too.
  const generated = new Set(['synthetic', 'arrays']);
  for (const [what, theirs, ours] of [
    ['text', meta.textEncoder, features.textEncoder],
    ['audio', meta.audioEncoder, features.audioEncoder],
  ] as const) {
    if (ours === undefined || theirs === ours || generated.has(theirs) || generated.has(ours)) continue;
    throw new CheckpointMismatchError(
      `${checkpoint} was trained on ${what} encoder '${theirs}' features, ${source} holds '${ours}': use features extracted with ` +
        `--${what}-encoder ${theirs}`,
    );
  }
  if (meta.classNames.join('\u0000') !== features.classNames.join('\u0000')) {
    throw new CheckpointMismatchError(
      `${checkpoint} predicts [${meta.classNames.join(', ')}] but ${source} is labelled [${features.classNames.join(', ')}]`,
    );
  }
}
