// One writer per run directory: a `lock` file created exclusively, holding the writer's pid and the
// folder (a copy of a run carries the file, but not the lock). A
// lock whose process is gone (killed, crashed) is stale and taken over, so a run killed with
// SIGKILL resumes without manual clean-up. Node only.

import { openSync, closeSync, rmSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { makeDirs, readBoundedSync } from '../data/files.ts';

export class LockError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LockError';
  }
}

/** Whether a process with this pid runs (and is not this one's zombie). */
export function alive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The pid in `dir/lock` if a live process holds it for this folder, else undefined (no lock, a
 * dead holder, or a lock that came with a copy of the run: it names another folder).
 */
export function lockHolder(dir: string): number | undefined {
  let text: string;
  try {
    // Bounded, regular files only: a FIFO named lock blocked the trainer here; such a file holds no live lock.
    text = readBoundedSync(join(dir, 'lock'), 8192).toString('utf8');
  } catch {
    return undefined;
  }
  const [pid, folder] = text.split('\n');
  if (folder && folder !== resolve(dir)) return undefined;
  const holder = Number(pid.trim());
  return alive(holder) ? holder : undefined;
}

/** Takes `dir/lock` for this process; returns its release. Throws LockError when another live process holds it. */
export function lockRun(dir: string, what = 'a trainer'): () => void {
  makeDirs(dir);
  const file = join(dir, 'lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx');
      // The folder too: a run copied while its trainer runs carries this file, with a live pid.
      writeSync(fd, `${process.pid}\n${resolve(dir)}\n`);
      closeSync(fd);
      return () => {
        if (lockHolder(dir) === process.pid) rmSync(file, { force: true });
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const holder = lockHolder(dir);
      if (holder !== undefined) throw new LockError(`${dir}: ${what} (pid ${holder}) is writing to this run directory; wait for it to end, or give another --out`);
      rmSync(file, { force: true }); // stale: its process is gone
    }
  }
  throw new LockError(`${dir}: could not take the lock file ${file}`);
}
