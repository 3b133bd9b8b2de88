export * from './decode.ts';
export * from './resample.ts';
