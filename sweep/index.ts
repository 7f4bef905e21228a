// One index of a sweep: which index a task is (the flag, or the scheduler's environment), where it
// trains (S/runs/I), and its state — done (DONE, written atomically once training ends), running (a
// live lock, session/lock.ts), failed (FAILED, the error of the last attempt) or pending.

import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeAtomic, makeDirs } from '../data/files.ts';
import { lockHolder } from '../session/lock.ts';
import type { SweepPlan } from './plan.ts';

/** Slurm array tasks and Kubernetes Indexed Job pods name their index in the environment. */
export const INDEX_VARS = ['SLURM_ARRAY_TASK_ID', 'JOB_COMPLETION_INDEX'] as const;

export function resolveIndex(plan: SweepPlan, given: number | undefined, env: NodeJS.ProcessEnv = process.env): number {
  let index = given;
  let from = '--index';
  if (index === undefined) {
    const v = INDEX_VARS.find((k) => env[k] !== undefined && env[k] !== '');
    if (!v) throw new Error(`statcell sweep run: no index; give --index I, or run it as a Slurm array task (${INDEX_VARS[0]}) or an Indexed Job pod (${INDEX_VARS[1]}), or --local`);
    from = `${v}=${env[v]}`;
    index = Number(env[v]);
  }
  if (!Number.isInteger(index) || index! < 0 || index! >= plan.indices.length) throw new Error(`statcell sweep run: ${from} is not an index of this sweep (0…${plan.indices.length - 1})`);
  return index!;
}

export const runDir = (dir: string, index: number) => join(dir, 'runs', String(index));

export type IndexState = 'done' | 'running' | 'failed' | 'pending';

export function indexState(dir: string, index: number): { state: IndexState; detail?: string } {
  const run = runDir(dir, index);
  if (existsSync(join(run, 'DONE'))) return { state: 'done' };
  // The pid is only meaningful on this node; a task on another node shows as pending here.
  const pid = lockHolder(run);
  if (pid !== undefined) return { state: 'running', detail: `pid ${pid}` };
  if (existsSync(join(run, 'FAILED'))) return { state: 'failed', detail: readFileSync(join(run, 'FAILED'), 'utf8').trim().split('\n')[0] };
  return { state: 'pending' };
}

export function markDone(dir: string, index: number, record: Record<string, unknown>): void {
  const run = runDir(dir, index);
  writeAtomic(join(run, 'DONE'), JSON.stringify(record, null, 2) + '\n');
  rmSync(join(run, 'FAILED'), { force: true });
}

export function markFailed(dir: string, index: number, error: string): void {
  const run = runDir(dir, index);
  makeDirs(run);
  writeAtomic(join(run, 'FAILED'), error + '\n');
}

export function readDone(dir: string, index: number): Record<string, unknown> {
  return JSON.parse(readFileSync(join(runDir(dir, index), 'DONE'), 'utf8'));
}

/** The last record of the run's metrics.jsonl (the final epoch's validation), or undefined. */
export function lastMetrics(run: string): unknown {
  const f = join(run, 'metrics.jsonl');
  if (!existsSync(f)) return undefined;
  const lines = readFileSync(f, 'utf8').trim().split('\n').filter(Boolean);
  return lines.length ? JSON.parse(lines.at(-1)!) : undefined;
}
