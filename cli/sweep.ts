// statcell sweep: plan a grid of trainings for a cluster's scheduler (Slurm job array, Kubernetes
// Indexed Job), run one index of it (or all, locally), show its state and collect its results.
// The plan lives in sweep/; training is `statcell train`'s own trainCommand.

import { Option, type Command } from 'commander';
import { backendOption, checkpointOption, fitOption, int, log, parseSet, positiveInt, seed, selfCommand } from './options.ts';

const collectList = (v: string, prev: string[] = []) => [...prev, v];

export function registerSweep(program: Command): void {
  const sweep = program.command('sweep').description('a grid of trainings (e.g. the β sweep) on Slurm, Kubernetes or this machine');

  sweep
    .command('plan')
    .description('write <out>/sweep.json, slurm.sbatch (a job array), job.yaml (a Kubernetes Indexed Job) and README.md')
    .requiredOption('--model <file>', 'a .vae model file')
    .requiredOption('--sweep <name=lo:hi:n|name=a,b,c>', 'a swept parameter (repeatable: the product), e.g. --sweep beta=0.01:0.99:25', collectList, [])
    .option('--set <name=value>', 'a parameter every index shares (repeatable)', parseSet, {})
    .requiredOption('--data <manifest>', 'manifest CSV')
    .requiredOption('--out <dir>', 'sweep directory')
    .addOption(backendOption())
    .option('--batch <n>', 'batch size', positiveInt, 32)
    .option('--micro-batch <n>', 'micro-batches of n', positiveInt)
    .option('--epochs <n>', 'epochs per index', positiveInt)
    .option('--iterations <n>', 'iterations per index (instead of --epochs)', positiveInt)
    .option('--seed <n>', 'seed of every index', seed, 1)
    .option('--checkpoint-every <n>', 'also checkpoint every n iterations (a requeue repeats at most n)', positiveInt)
    .option('--eval-samples <n>', 'z samples per cell for the validation ELBO', positiveInt, 10)
    .addOption(fitOption())
    .option('--gpus <n>', 'GPUs per task (0 for a CPU cluster)', int, 1)
    .option('--statcell <cmd>', 'how a task starts statcell (default: node and this checkout)')
    .option('--image <name>', 'Kubernetes: the container image holding statcell', 'statcell:latest')
    .option('--parallelism <n>', 'Kubernetes: pods at once', positiveInt, 4)
    .option('--pvc <name>', 'Kubernetes: the volume claim mounted at the sweep directory', 'statcell-sweep')
    .option('--retries <n>', 'retries of one index (Kubernetes backoffLimitPerIndex)', int, 3)
    .option('--sbatch <line>', 'an extra #SBATCH line, e.g. --sbatch=--partition=gpu (repeatable)', collectList, [])
    .action(async (o) => {
      const { makePlan, writePlan } = await import('../sweep/plan.ts');
      const { outsideSweep, shellQuote, writeSchedulerFiles } = await import('../sweep/schedulers.ts');
      const options = { backend: o.backend, batch: o.batch, seed: o.seed, evalSamples: o.evalSamples, fit: o.fit, epochs: o.epochs, iterations: o.iterations, checkpointEvery: o.checkpointEvery, microBatch: o.microBatch };
      for (const k of Object.keys(options) as (keyof typeof options)[]) if (options[k] === undefined) delete options[k];
      const plan = makePlan({ model: o.model, data: o.data, set: o.set, sweep: o.sweep, options });
      writePlan(o.out, plan);
      const statcell = o.statcell ?? selfCommand().map(shellQuote).join(' ');
      writeSchedulerFiles(o.out, plan, { gpus: o.gpus, statcell, image: o.image, parallelism: o.parallelism, pvc: o.pvc, sbatch: o.sbatch, retries: o.retries });
      for (const f of outsideSweep(o.out, plan)) log(`warning: ${f} is outside ${o.out}, which is all a Kubernetes pod of job.yaml mounts (see ${o.out}/README.md)`);
      log(`${o.out}: ${plan.indices.length} indices; submit with sbatch ${o.out}/slurm.sbatch or kubectl apply -f ${o.out}/job.yaml (see ${o.out}/README.md)`);
    });

  sweep
    .command('run')
    .description('train one index (--index, or SLURM_ARRAY_TASK_ID / JOB_COMPLETION_INDEX) into <dir>/runs/<index>, resuming; or --local: every unfinished index')
    .argument('<dir>', 'sweep directory')
    .option('--index <n>', 'the index', int)
    .option('--local', 'run every unfinished index on this machine')
    .option('--parallel <k>', 'with --local: indices at once', positiveInt, 1)
    .option('--log-every <n>', 'a progress line every n steps', positiveInt)
    .addOption(new Option('--step-delay-ms <n>', 'test aid: pause after each step').argParser(int).hideHelp())
    .action(async (dir: string, o) => {
      if (o.local && o.index !== undefined) throw new Error('statcell sweep run: --index runs one index, --local every unfinished one; give one of them');
      if (o.local) {
        const { failed, stopped } = await runLocal(dir, o.parallel, o);
        process.exitCode = stopped === 'SIGINT' ? 130 : stopped === 'SIGTERM' ? 143 : failed ? 1 : 0;
        return;
      }
      process.exitCode = await runIndex(dir, o.index, o);
    });

  sweep
    .command('status')
    .description('done / running / failed / pending per index')
    .argument('<dir>', 'sweep directory')
    .action(async (dir: string) => {
      const { readPlan } = await import('../sweep/plan.ts');
      const { indexState } = await import('../sweep/index.ts');
      const plan = readPlan(dir);
      const counts: Record<string, number> = {};
      for (const x of plan.indices) {
        const s = indexState(dir, x.index);
        counts[s.state] = (counts[s.state] ?? 0) + 1;
        process.stdout.write(`${x.index}\t${s.state}\t${JSON.stringify(x.set)}${s.detail ? `\t${s.detail}` : ''}\n`);
      }
      log(Object.entries(counts).map(([k, v]) => `${v} ${k}`).join(', '));
    });

  sweep
    .command('collect')
    .description("test-set evaluation per index (the model's `evaluate` values) → <dir>/results.csv, tradeoff.svg/png (reconstruction and KL against the swept parameter), generated.png (cells per index)")
    .argument('<dir>', 'sweep directory')
    .option('--samples <n>', 'z samples per cell', positiveInt, 10)
    .addOption(checkpointOption('latest', 'of each index'))
    .option('--generated <n>', 'cells generated per index in generated.png (0: none)', int, 8)
    .addOption(backendOption())
    .action(async (dir: string, o) => {
      await collectSweep(dir, o);
    });
}

/** One index: a no-op when DONE; else trains (resuming) and writes DONE. Returns the exit code. */
async function runIndex(dir: string, given: number | undefined, o: { logEvery?: number; stepDelayMs?: number }): Promise<number> {
  const { readPlan, overridesOf } = await import('../sweep/plan.ts');
  const { resolveIndex, indexState, runDir, markDone, markFailed, lastMetrics } = await import('../sweep/index.ts');
  const { trainCommand } = await import('./train.ts');
  const plan = readPlan(dir);
  const index = resolveIndex(plan, given);
  if (indexState(dir, index).state === 'done') {
    log(`index ${index}: already DONE, nothing to do`);
    return 0;
  }
  const out = runDir(dir, index);
  const set = overridesOf(plan, index);
  log(`index ${index} of ${plan.indices.length}: ${JSON.stringify(set)} → ${out}`);
  try {
    // Always --resume: a first attempt finds no checkpoint and starts fresh; a requeued one continues.
    const r = await trainCommand({ ...plan.options, model: plan.model, set, data: plan.data, out, resume: true, logEvery: o.logEvery, stepDelayMs: o.stepDelayMs });
    try {
      if (r.stopped !== 'done') {
        log(`index ${index}: stopped by ${r.stopped} at iteration ${r.iteration}; rerun to resume`);
        return r.stopped === 'SIGINT' ? 130 : 143;
      }
      markDone(dir, index, { index, set, iteration: r.iteration, latest: r.latest, best: r.best ?? null, metrics: lastMetrics(out) ?? null, finished: new Date().toISOString() });
      log(`index ${index}: DONE at iteration ${r.iteration}`);
      return 0;
    } finally {
      r.runtime.destroy();
    }
  } catch (e) {
    // Another live process on this index is not this index failing.
    if ((e as Error).name !== 'LockError') markFailed(dir, index, (e as Error).message);
    throw e;
  }
}

/**
 * Every index not DONE, as child processes (`statcell sweep run --index`), k at a time; the number
 * that failed, and the signal that stopped it. SIGINT and SIGTERM (Ctrl-C, Slurm's time limit, a
 * `timeout`) go on to the running tasks, which checkpoint and stop; none is started after, and
 * this process waits for them (it used to exit and leave them training, orphaned).
 */
async function runLocal(dir: string, parallel: number, o: { logEvery?: number; stepDelayMs?: number }): Promise<{ failed: number; stopped?: NodeJS.Signals }> {
  const { readPlan } = await import('../sweep/plan.ts');
  const { indexState, markFailed } = await import('../sweep/index.ts');
  const { spawn } = await import('node:child_process');
  const plan = readPlan(dir);
  const todo = plan.indices.map((x) => x.index).filter((i) => !['done', 'running'].includes(indexState(dir, i).state));
  log(`${todo.length} of ${plan.indices.length} indices to run, ${Math.max(1, parallel)} at a time`);
  const [node, ...self] = selfCommand();
  let failed = 0;
  const children = new Set<import('node:child_process').ChildProcess>();
  let stopped: NodeJS.Signals | undefined;
  const forward = (signal: NodeJS.Signals) => () => {
    stopped = signal;
    for (const c of children) c.kill(signal);
  };
  const handlers = { SIGINT: forward('SIGINT'), SIGTERM: forward('SIGTERM') };
  for (const [signal, h] of Object.entries(handlers)) process.on(signal, h);
  const worker = async () => {
    for (let i = stopped ? undefined : todo.shift(); i !== undefined; i = stopped ? undefined : todo.shift()) {
      const args = [...self, 'sweep', 'run', dir, '--index', String(i), ...(o.logEvery ? ['--log-every', String(o.logEvery)] : []), ...(o.stepDelayMs ? ['--step-delay-ms', String(o.stepDelayMs)] : [])];
      const code = await new Promise<number | null>((res) => {
        const child = spawn(node, args, { stdio: ['ignore', 'inherit', 'inherit'] });
        children.add(child);
        child.on('exit', (c) => {
          children.delete(child);
          res(c);
        });
      });
      if (code !== 0) {
        failed++;
        log(`index ${i}: exit ${code}`);
        // A task that died before it could write FAILED (a crash, the OOM killer) is failed, not
        // pending; one stopped by a signal (130, 143) resumes.
        if (code !== 130 && code !== 143 && indexState(dir, i).state === 'pending') markFailed(dir, i, `the task exited with ${code ?? 'a signal'} before it could say why; its output is in the log above`);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, parallel) }, worker));
  } finally {
    for (const [signal, h] of Object.entries(handlers)) process.off(signal, h);
  }
  return { failed, stopped };
}

/** The test split of every DONE index, evaluated as `statcell eval` does; a CSV row per index and plots against the first swept parameter. */
async function collectSweep(dir: string, o: { samples: number; checkpoint: string; backend: string; generated: number }): Promise<void> {
  const { writeFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { readPlan, overridesOf } = await import('../sweep/plan.ts');
  const { indexState, runDir } = await import('../sweep/index.ts');
  const { evalCommand } = await import('./evaluate.ts');
  const { backendFor } = await import('./common.ts');
  const { tradeoffFigure, generatedFigure } = await import('../sweep/figures.ts');
  const plan = readPlan(dir);
  const backend = await backendFor(o.backend, log);
  const rows: { index: number; set: Record<string, unknown>; values: Record<string, number> }[] = [];
  for (const x of plan.indices) {
    if (indexState(dir, x.index).state !== 'done') {
      log(`index ${x.index}: not done, left out`);
      continue;
    }
    const r = await evalCommand({ run: runDir(dir, x.index), checkpoint: o.checkpoint, split: 'test', samples: o.samples }, backend, log);
    const values: Record<string, number> = {};
    for (const [k, v] of Object.entries(r)) if (typeof v === 'number' && !['iteration', 'cells', 'samples'].includes(k)) values[k] = v;
    rows.push({ index: x.index, set: overridesOf(plan, x.index), values });
  }
  if (!rows.length) throw new Error(`${dir}: no index is DONE yet (statcell sweep status ${dir})`);
  const axes = plan.axes.map((a) => a.name);
  const keys = Object.keys(rows[0].values);
  const csv = [['index', ...axes, ...keys].join(','), ...rows.map((r) => [r.index, ...axes.map((a) => JSON.stringify(r.set[a])), ...keys.map((k) => r.values[k])].join(','))].join('\n') + '\n';
  writeFileSync(join(dir, 'results.csv'), csv);
  // The paper's figure: reconstruction error (R) and KL (K) of the test set against the first axis.
  const x = axes[0];
  const recon = keys.find((k) => /sse|recon/i.test(k));
  const kl = keys.find((k) => /kl/i.test(k));
  if (recon && kl && rows.every((r) => typeof r.set[x] === 'number')) {
    const f = tradeoffFigure(rows.map((r) => ({ x: r.set[x] as number, recon: r.values[recon], kl: r.values[kl] })), x, { recon, kl });
    writeFileSync(join(dir, 'tradeoff.svg'), f.svg);
    writeFileSync(join(dir, 'tradeoff.png'), f.png);
  } else log(`no R/K figure: the model's evaluate values (${keys.join(', ')}) name no sse/recon and kl, or ${x} is not numeric`);
  if (o.generated > 0) {
    try {
      writeFileSync(join(dir, 'generated.png'), await generatedFigure(rows.map((r) => runDir(dir, r.index)), backend, o.generated));
      log(`generated.png: ${o.generated} cells per index, one row each, top to bottom: ${rows.map((r) => `${x}=${JSON.stringify(r.set[x])}`).join(', ')}`);
    } catch (e) {
      log(`no generated cells figure: ${(e as Error).message}`);
    }
  }
  process.stdout.write(csv);
  log(`wrote ${join(dir, 'results.csv')} (${rows.length} indices)`);
}
