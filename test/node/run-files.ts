// The latest checkpoint of a run directory, for tests that compare runs bit for bit: its
// tensors and its optimizer state (the Adam moments, in their own file beside the latest only).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { resolveCheckpoint, type Sidecar } from '../../session/checkpoint.ts';

export function latestCheckpoint(run: string): { name: string; side: Sidecar; tensors: Buffer; optimizer: Buffer; bytes: Buffer } {
  const dir = join(run, 'checkpoints');
  const name = resolveCheckpoint(dir, 'latest');
  if (!name) throw new Error(`${dir}: no latest checkpoint`);
  const tensors = readFileSync(join(dir, `${name}.safetensors`));
  const optimizer = readFileSync(join(dir, `${name}.optimizer.safetensors`));
  return { name, side: JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8')), tensors, optimizer, bytes: Buffer.concat([tensors, optimizer]) };
}
