export * from './decode.ts';
export * from './resample.ts';
export * from './clip-cache.ts';
export * from './augment.ts';
