// The tiny hand-built VAE used by the trainer and CLI tests (defined in train/tiny.ts so that the
// CLI can select it as tiny:reference / tiny:target).
export { tinyVae, TINY_DEFAULTS, warmupBeta, type TinyOptions } from '../../train/tiny.ts';
