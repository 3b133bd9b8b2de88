// Seeded inputs (tinygrad habit): uniform in [-2, 2] unless told otherwise; never zeros.
export { lengthMask, mulberry32, randomF32 } from '@emofuse/kernels';
