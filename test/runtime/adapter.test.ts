import { describe, expect, it } from 'vitest';
import { GpuUnavailableError, parseAdapterChoice } from '@emofuse/kernels';

describe('EMOFUSE_ADAPTER parsing', () => {
  it('defaults to auto', () => {
    expect(parseAdapterChoice(undefined)).toEqual({ backend: 'auto' });
    expect(parseAdapterChoice('')).toEqual({ backend: 'auto' });
  });
  it('takes a backend and an optional adapter name', () => {
    expect(parseAdapterChoice('vulkan')).toEqual({ backend: 'vulkan', name: undefined });
    expect(parseAdapterChoice('Vulkan:lavapipe')).toEqual({ backend: 'vulkan', name: 'lavapipe' });
    expect(parseAdapterChoice('auto:nvidia')).toEqual({ backend: 'auto', name: 'nvidia' });
  });
  it('refuses the null backend, which computes nothing', () => {
    expect(() => parseAdapterChoice('null')).toThrow(GpuUnavailableError);
    expect(() => parseAdapterChoice('null')).toThrow(/computes nothing/);
  });
  it('names the choices for an unknown backend', () => {
    expect(() => parseAdapterChoice('cuda')).toThrow(/unknown backend 'cuda'.*opengles/);
  });
});
