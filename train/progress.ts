// Progress: a cli-progress bar on a terminal, plain lines (every `every` steps) otherwise, so
// logs and CI output stay readable.

import cliProgress from 'cli-progress';

export interface Progress {
  start(total: number, at: number, label: string): void;
  update(at: number, info: Record<string, number>): void;
  /** A message that must not be garbled by the bar. */
  log(line: string): void;
  stop(): void;
}

const fmt = (info: Record<string, number>) =>
  Object.entries(info)
    .map(([k, v]) => `${k} ${Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(3) : v.toFixed(4)}`)
    .join('  ');

export function makeProgress(opts: { tty?: boolean; every?: number; out?: (line: string) => void } = {}): Progress {
  const out = opts.out ?? ((l: string) => process.stderr.write(l + '\n'));
  const tty = opts.tty ?? (process.stderr.isTTY === true && !process.env.CI);
  if (!tty) {
    let total = 0;
    let label = '';
    let last = Date.now();
    const every = opts.every ?? 0;
    return {
      start(t, at, l) {
        total = t;
        label = l;
        out(`${label}: ${at}/${total}`);
      },
      update(at, info) {
        // Every `every` steps, or (when 0) at most every 2 s and at the end.
        const now = Date.now();
        if ((every > 0 && at % every === 0) || (every === 0 && now - last > 2000) || at === total) {
          last = now;
          out(`${label}: step ${at}/${total}  ${fmt(info)}`);
        }
      },
      log: out,
      stop() {},
    };
  }
  const bar = new cliProgress.SingleBar({ format: '{label} [{bar}] {value}/{total} {eta_formatted} {info}', stream: process.stderr, hideCursor: true }, cliProgress.Presets.shades_classic);
  return {
    start(total, at, label) {
      bar.start(total, at, { label, info: '' });
    },
    update(at, info) {
      bar.update(at, { info: fmt(info) });
    },
    log(line) {
      // Clear the bar line, print, and let the next update redraw it.
      process.stderr.write('\r\x1b[K' + line + '\n');
    },
    stop() {
      bar.stop();
    },
  };
}
