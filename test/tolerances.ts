// The one tolerance table lives beside the kernels (the self-check and the benchmarks use it too).
export { FD_TOL, TOL } from '@emofuse/kernels';
