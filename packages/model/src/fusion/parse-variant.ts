// A fusion variant named by a user (a flag, a list of variants), checked against the model's one list.

import { FUSION_VARIANTS, FusionConfigError, type FusionVariant } from './model.ts';

/** `name` as a FusionVariant, or a FusionConfigError that names `where` and lists the variants. */
export function parseFusionVariant(name: string, where = 'fusion'): FusionVariant {
  const v = name.trim();
  if (!(FUSION_VARIANTS as readonly string[]).includes(v)) {
    throw new FusionConfigError(`${where}: '${v}' is not a fusion variant; choose one of ${FUSION_VARIANTS.join(', ')}`);
  }
  return v as FusionVariant;
}

/** A comma-separated list of fusion variants ('cross-self,text,audio'). */
export function parseFusionVariants(list: string, where = 'fusion'): FusionVariant[] {
  return list.split(',').map((v) => parseFusionVariant(v, where));
}
