// The tiny linear VAE of the trainer, checkpoint and CLI tests: test/models/tiny.vae, compiled
// like any user model.
import { fileURLToPath } from 'node:url';
import { compileModelFile } from '../../compiler/index.ts';

export const TINY_FILE = fileURLToPath(new URL('../models/tiny.vae', import.meta.url));

export const tinyModel = (overrides: Record<string, unknown> = {}) => compileModelFile(TINY_FILE, { overrides });

/** Overrides of the tiny target model: the structure, given the reference and the label. */
export const TINY_TARGET = { conditioned: true, image_channels: ['structure'] };
