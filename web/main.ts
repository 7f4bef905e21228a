// The explorer page: loads the site beside it (web/site.ts: index, cells, embeddings), starts the
// model worker (web/worker.ts: compiles the models, opens the backend, runs web/explorer.ts) and
// wires the views to it through web/rpc.ts. Plain DOM. State for the end-to-end tests is kept in
// data-* attributes (body[data-state], #scatter[data-points]) and on window.statcell.

import { PCA } from 'ml-pca';
import { UMAP } from 'umap-js';
import { seededRandom } from '../data/random.ts';
import { contrastStretch, PALETTE } from '../data/palette.ts';
import type { BackendChoice } from '../runtime/device.ts';
import type { CellChannels } from '../session/feeds.ts';
import { klPerDim, siteCell, topDims } from './explorer.ts';
import { cellLayers, composite, integratedLayers, labelColours, type Layer } from './render.ts';
import { ModelWorker, RemoteExplorer, type Opened } from './rpc.ts';
import { httpFetcher, loadSiteData, type ModelRole, type SiteData } from './site.ts';
import { escapeXml as escape } from '../data/markup.ts';
import { offerOmeTiffs } from './download.ts';
import { fromDataTransfer, fromFolderPicker, readDropped, type Dropped } from './drop.ts';
import type { VolumePanel } from './volume.ts';

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const SCALE = 4; // cells are small: shown 4× (nearest neighbour)
const WALK_DIMS = 8;

function say(text: string): void {
  $('status').textContent = text;
}

function fail(e: unknown): void {
  const el = $('error');
  el.hidden = false;
  el.textContent = `Error: ${(e as Error).message ?? e}`;
  document.body.dataset.state = 'error';
  console.error(e);
}

/** Draws layers on a canvas at the model's size, shown SCALE× (or `scale`). */
function draw(canvas: HTMLCanvasElement, size: number[], layers: Layer[], scale = SCALE): void {
  const [Y, X] = size;
  canvas.width = X;
  canvas.height = Y;
  canvas.style.width = `${X * scale}px`;
  canvas.style.height = `${Y * scale}px`;
  canvas.getContext('2d')!.putImageData(new ImageData(composite(size, layers) as Uint8ClampedArray<ArrayBuffer>, X, Y), 0, 0);
  canvas.dataset.drawn = String(Number(canvas.dataset.drawn ?? 0) + 1);
}

/** Tiles of cells side by side on one canvas (for the generated cells and their download). */
function drawTiles(canvas: HTMLCanvasElement, size: number[], tiles: Layer[][], scale = SCALE): void {
  const [Y, X] = size;
  const gap = 2;
  canvas.width = tiles.length * (X + gap) - gap;
  canvas.height = Y;
  canvas.style.width = `${canvas.width * scale}px`;
  canvas.style.height = `${Y * scale}px`;
  const ctx = canvas.getContext('2d')!;
  ctx.fillStyle = '#282828';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  tiles.forEach((t, k) => ctx.putImageData(new ImageData(composite(size, t) as Uint8ClampedArray<ArrayBuffer>, X, Y), k * (X + gap), 0));
  canvas.dataset.drawn = String(Number(canvas.dataset.drawn ?? 0) + 1);
}

/** The Wasm thread count and why: the second half of the backend line. */
function threadNote(o: Opened): string {
  if (o.kind !== 'wasm') return ' The models run in a worker.';
  if (o.threads > 1) return ` Wasm threads ${o.threads}: the page is cross-origin isolated, and the models run in a worker with its thread pool.`;
  if (!globalThis.crossOriginIsolated) return ' One thread: the host sends no COOP/COEP headers, so the page is not cross-origin isolated (no SharedArrayBuffer for Wasm threads).';
  return ` One thread: ${o.oneThreadWhy}.`;
}

/** The warning when the models run slowly: neither WebGPU (a hardware adapter) nor Wasm threads, or WebGPU chosen on a software adapter; null otherwise. */
function slowWarning(o: Opened): string | null {
  if (o.kind === 'webgpu') return o.gpu.kind === 'software' ? `WebGPU runs on a software adapter (${o.gpu.name}), much slower than Wasm: choose auto or Wasm above for speed.` : null;
  if (o.gpu.kind === 'hardware' || o.threads > 1) return null;
  const gpu = o.gpu.kind === 'software' ? `WebGPU has only a software adapter (${o.gpu.name}), slower than Wasm` : 'there is no WebGPU adapter';
  const threads = globalThis.crossOriginIsolated ? `Wasm runs one thread (${o.oneThreadWhy})` : 'no Wasm threads (the host sends no COOP/COEP headers)';
  return (
    `Neither WebGPU nor Wasm threads: ${gpu}, and ${threads}, so the models run on one CPU thread. ` +
    'For speed, open the page in a browser with WebGPU on a GPU (Chrome or Edge 113+; headless Chromium needs --enable-unsafe-webgpu), or serve it with the COOP/COEP headers (statcell serve sends them).'
  );
}

interface Point {
  x: number;
  y: number;
  label: string;
  cell: CellChannels;
  name: string;
  /** Index in the site's cells, or −1 for a dropped cell. */
  index: number;
}

class Page {
  ex!: RemoteExplorer;
  site!: SiteData;
  opened!: Opened;
  gain: Record<string, number> = {};
  /** The latent space the scatter shows. */
  role: ModelRole = 'target';
  points: Point[] = [];
  /** Latent means of the scatter's points, and the fitted projection (to place new cells). */
  means: number[][] = [];
  project: (rows: number[][]) => number[][] = (r) => r.map(() => [0, 0]);
  selected: Point | null = null;
  selectedMean: Float32Array | null = null;
  walkDims: number[] = [];
  walkBusy = false;
  walkPending = false;
  lastWalkMs = NaN;
  generated: { size: number[]; tiles: Layer[][] } | null = null;
  /** The 3D view (web/volume.ts), for 3D sites only. */
  volume: VolumePanel | null = null;

  async start(): Promise<void> {
    const choice = (new URLSearchParams(location.search).get('backend') ?? 'auto') as BackendChoice;
    if (!['auto', 'webgpu', 'wasm'].includes(choice)) throw new Error(`?backend=${choice}: expected auto, webgpu or wasm`);
    $<HTMLSelectElement>('backend-choice').value = choice;
    $<HTMLSelectElement>('backend-choice').addEventListener('change', (e) => {
      const u = new URL(location.href);
      u.searchParams.set('backend', (e.target as HTMLSelectElement).value);
      location.href = u.href;
    });
    // ?threads=N: Wasm on N threads (a test and benchmark aid; more than 1 needs cross-origin isolation).
    const threads = Number(new URLSearchParams(location.search).get('threads') ?? 0) || undefined;

    say('Loading and compiling the models…');
    const base = new URL('./', location.href);
    const worker = ModelWorker.start();
    // The page reads the cells and embeddings while the worker compiles the models and opens the backend.
    const [site, opened] = await Promise.all([loadSiteData(httpFetcher(base)), worker.call('open', base.href, choice, threads)]);
    this.site = site;
    this.opened = opened;
    this.ex = new RemoteExplorer(site, worker);
    const b = $('backend');
    b.dataset.kind = opened.kind;
    b.dataset.description = opened.description;
    b.dataset.threads = String(opened.threads);
    b.textContent = opened.reason.replace('--backend webgpu uses it', 'choose WebGPU above to use it') + '.' + threadNote(opened);
    const warning = slowWarning(opened);
    if (warning) {
      const w = $('warning');
      w.hidden = false;
      w.textContent = warning;
    }
    this.role = site.models.target ? 'target' : 'reference';
    this.gain = contrastStretch(site.cells.slice(0, 64).map((_, i) => siteCell(site, i)));
    this.setupControls();
    if (site.index.size.length === 3) await this.open3d();
    await this.layout();
    // ?idle: load and compile only, select nothing (the tests and the benchmark call the explorer themselves).
    if (!new URLSearchParams(location.search).has('idle')) await this.select(this.points[0]);
    const names = Object.values(site.models).map((m) => `${m!.meta.name} (${m!.meta.checkpoint}, iteration ${m!.meta.iteration})`);
    say(`Loaded ${site.index.cells.length} cells and ${names.join(' and ')}; compiled in the page's model worker in ${opened.compileMs.toFixed(0)} ms, backend opened in ${opened.openMs.toFixed(0)} ms.`);
    document.body.dataset.state = 'ready';
  }

  setupControls(): void {
    const site = this.site;
    const em = $<HTMLSelectElement>('embed-model');
    for (const r of ['target', 'reference'] as const) if (site.models[r]?.mean.length) em.add(new Option(`${r} model (${site.models[r]!.meta.name})`, r));
    em.value = this.role;
    em.addEventListener('change', () => {
      this.role = em.value as ModelRole;
      this.run(() => this.layout());
    });
    $<HTMLSelectElement>('projection').addEventListener('change', () => this.run(() => this.layout()));
    const idx = $<HTMLInputElement>('cell-index');
    idx.max = String(site.cells.length - 1);
    idx.addEventListener('change', () => this.run(() => this.select(this.points[Math.max(0, Math.min(this.points.length - 1, Number(idx.value)))])));

    const sc = $<HTMLCanvasElement>('scatter');
    sc.addEventListener('mousemove', (e) => this.hover(this.nearest(e)));
    sc.addEventListener('click', (e) => this.run(() => this.select(this.nearest(e))));
    sc.addEventListener('keydown', (e) => {
      if (e.key !== 'ArrowRight' && e.key !== 'ArrowLeft') return;
      e.preventDefault();
      const at = this.selected ? this.points.indexOf(this.selected) : -1;
      const next = this.points[(at + (e.key === 'ArrowRight' ? 1 : this.points.length - 1)) % this.points.length];
      this.run(() => this.select(next));
    });

    const labels = site.models.target?.meta.labels ?? [];
    // The labels of the site's cells (those the model was trained on) first and chosen by default.
    const seen = this.trainedLabels();
    const fs = $('structures');
    labels.forEach((l, k) => {
      const lab = document.createElement('label');
      lab.innerHTML = `<input type="checkbox" value="${k}" ${seen.slice(0, 3).includes(l) ? 'checked' : ''}> ${escape(l)} `;
      fs.append(lab);
    });
    fs.addEventListener('change', () => this.run(() => this.integrate()));
    $('channels').addEventListener('change', () => this.run(() => this.integrate()));
    $('integrate').addEventListener('click', () => this.run(() => this.integrate()));
    if (!site.models.target) $('integrated').querySelector('p')!.textContent = 'This site has no target model: no structures to generate.';

    for (const id of ['gen-label', 'drop-label']) {
      const s = $<HTMLSelectElement>(id);
      if (id === 'gen-label') s.add(new Option('none (membrane and DNA only)', ''));
      for (const l of [...seen, ...labels.filter((l) => !seen.includes(l))]) s.add(new Option(l, l));
      if (seen.length) s.value = seen[0];
    }
    $('gen').addEventListener('click', () => this.run(() => this.generate()));
    $('download').addEventListener('click', () => this.download());
    if (!site.models.reference) ($('gen') as HTMLButtonElement).disabled = true;

    const dz = $('dropzone');
    dz.addEventListener('dragover', (e) => {
      e.preventDefault();
      dz.classList.add('over');
    });
    dz.addEventListener('dragleave', () => dz.classList.remove('over'));
    dz.addEventListener('drop', (e) => {
      e.preventDefault();
      dz.classList.remove('over');
      // A file, or a folder (an OME-Zarr image): its entries are taken now, during the event.
      if (e.dataTransfer) {
        const got = fromDataTransfer(e.dataTransfer);
        this.runDrop(async () => {
          const d = await got;
          if (d) await this.dropped(d);
        });
      }
    });
    $<HTMLInputElement>('file').addEventListener('change', (e) => {
      const f = (e.target as HTMLInputElement).files?.[0];
      if (f) this.runDrop(() => this.dropped({ kind: 'file', name: f.name, file: f }));
    });
    $<HTMLInputElement>('folder').addEventListener('change', (e) => {
      const d = fromFolderPicker((e.target as HTMLInputElement).files!);
      if (d) this.runDrop(() => this.dropped(d));
    });
  }

  /** The labels of the site's cells that the target model knows, most frequent first. */
  trainedLabels(): string[] {
    const known = new Set(this.site.models.target?.meta.labels ?? []);
    const count = new Map<string, number>();
    for (const c of this.site.index.cells) if (known.has(c.label)) count.set(c.label, (count.get(c.label) ?? 0) + 1);
    return [...count].sort((a, b) => b[1] - a[1]).map(([l]) => l);
  }

  /** Runs a UI action, showing its error on the page. */
  run(f: () => Promise<void> | void): void {
    Promise.resolve()
      .then(f)
      .catch((e) => fail(e));
  }

  /**
   * A drop that cannot be read (a text file, a folder that is no OME-Zarr, a bomb) is refused in the
   * drop's status line, counted in its data-refused; the page stays ready (the page-wide error stayed
   * up, and the page in its error state, after the next drop had worked).
   */
  runDrop(f: () => Promise<void>): void {
    Promise.resolve()
      .then(f)
      .catch((e) => {
        const s = $('drop-status');
        s.textContent = `Refused: ${(e as Error).message ?? e}`;
        s.dataset.refused = String(Number(s.dataset.refused ?? 0) + 1);
      });
  }

  /** Projects the chosen latent space's means (PCA or UMAP) and draws the scatter. */
  async layout(): Promise<void> {
    const m = this.site.models[this.role]!;
    const dropped = this.points.filter((p) => p.index < 0);
    this.points = this.site.index.cells.map((c, i) => ({ x: 0, y: 0, label: c.label, cell: siteCell(this.site, i), name: `cell ${c.id} (${c.split})`, index: i }));
    this.means = m.mean.map((r) => Array.from(r));
    const how = $<HTMLSelectElement>('projection').value;
    say(`Projecting ${this.means.length} cells (${how.toUpperCase()})…`);
    await new Promise((r) => setTimeout(r, 0));
    let xy: number[][];
    if (how === 'umap') {
      const umap = new UMAP({ nComponents: 2, nNeighbors: Math.min(15, this.means.length - 1), minDist: 0.1, random: seededRandom(1) });
      xy = umap.fit(this.means);
      this.project = (rows) => umap.transform(rows);
    } else {
      const pca = new PCA(this.means);
      const k = Math.min(2, this.means[0].length);
      xy = pca.predict(this.means, { nComponents: k }).to2DArray();
      this.project = (rows) => pca.predict(rows, { nComponents: k }).to2DArray();
    }
    xy.forEach(([x, y], i) => Object.assign(this.points[i], { x, y: y ?? 0 }));
    // Dropped cells are embedded again in this space.
    for (const p of dropped) await this.place(p);
    this.drawScatter();
    say(`${how.toUpperCase()} of the ${this.role} model's μ for ${this.points.length} cells.`);
  }

  private frame() {
    const xs = this.points.map((p) => p.x);
    const ys = this.points.map((p) => p.y);
    const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
    const W = 460;
    const pad = 14;
    return {
      px: (p: Point) => pad + ((p.x - x0) / (x1 - x0 || 1)) * (W - 2 * pad),
      py: (p: Point) => W - pad - ((p.y - y0) / (y1 - y0 || 1)) * (W - 2 * pad),
    };
  }

  labelColour(label: string): string {
    const labels = [...new Set(this.site.index.cells.map((c) => c.label))];
    return labelColours(labels.length)[Math.max(0, labels.indexOf(label))];
  }

  drawScatter(): void {
    const sc = $<HTMLCanvasElement>('scatter');
    const ctx = sc.getContext('2d')!;
    ctx.fillStyle = '#0d0e10';
    ctx.fillRect(0, 0, sc.width, sc.height);
    const { px, py } = this.frame();
    for (const p of this.points) {
      ctx.fillStyle = this.labelColour(p.label);
      ctx.beginPath();
      if (p.index < 0) {
        // A dropped cell: a larger ringed marker.
        ctx.arc(px(p), py(p), 7, 0, 2 * Math.PI);
        ctx.fill();
        ctx.strokeStyle = '#fff';
        ctx.lineWidth = 2;
        ctx.stroke();
      } else {
        ctx.arc(px(p), py(p), 3, 0, 2 * Math.PI);
        ctx.fill();
      }
    }
    if (this.selected) {
      ctx.strokeStyle = '#fff';
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      ctx.arc(px(this.selected), py(this.selected), 9, 0, 2 * Math.PI);
      ctx.stroke();
    }
    sc.dataset.points = String(this.points.length);
    sc.dataset.dropped = String(this.points.filter((p) => p.index < 0).length);
    const labels = [...new Set(this.site.index.cells.map((c) => c.label))];
    $('legend').innerHTML = labels.map((l) => `<span><i style="background:${this.labelColour(l)}"></i>${escape(l)}</span>`).join('');
  }

  nearest(e: MouseEvent): Point {
    const sc = e.target as HTMLCanvasElement;
    const r = sc.getBoundingClientRect();
    const mx = ((e.clientX - r.left) * sc.width) / r.width;
    const my = ((e.clientY - r.top) * sc.height) / r.height;
    const { px, py } = this.frame();
    let best = this.points[0];
    let d = Infinity;
    for (const p of this.points) {
      const dd = (px(p) - mx) ** 2 + (py(p) - my) ** 2;
      if (dd < d) [best, d] = [p, dd];
    }
    return best;
  }

  hover(p: Point): void {
    draw($('hover'), this.ex.size, cellLayers(p.cell, this.gain), 2);
    $('hover-label').textContent = `${p.name}: ${p.label}`;
  }

  /** A cell beside its reconstruction; it becomes the base of the integrated cell and the walk. */
  async select(p: Point): Promise<void> {
    this.selected = p;
    this.drawScatter();
    if (p.index >= 0) $<HTMLInputElement>('cell-index').value = String(p.index);
    draw($('real'), this.ex.size, cellLayers(p.cell, this.gain));
    $('real-label').textContent = `${p.name}: ${p.label}`;
    const recon = await this.ex.reconstructCell(p.cell, p.label);
    draw($('recon'), this.ex.size, cellLayers({ ...p.cell, ...recon }, this.gain));
    $('recon').dataset.cell = p.name;
    await this.volume?.setCell(p.name, p.cell, recon);
    await this.setupWalk(p);
    await this.integrate();
  }

  async integrate(): Promise<void> {
    const p = this.selected;
    if (!p || !this.site.models.target) return;
    const labels = this.site.models.target.meta.labels;
    const chosen = Array.from($('structures').querySelectorAll<HTMLInputElement>('input:checked')).map((i) => labels[Number(i.value)]);
    const seed = Number($<HTMLInputElement>('integrated-seed').value) || 0;
    const structures = Object.entries(await this.ex.structuresIn(p.cell, chosen, seed));
    // Channel toggles: membrane, each chosen structure, DNA (kept as the user set them).
    const fs = $('channels');
    const was = new Map(Array.from(fs.querySelectorAll<HTMLInputElement>('input')).map((i) => [i.value, i.checked]));
    fs.querySelectorAll('label').forEach((l) => l.remove());
    for (const name of ['membrane', ...chosen, 'dna']) {
      const lab = document.createElement('label');
      lab.innerHTML = `<input type="checkbox" value="${escape(name)}" ${was.get(name) ?? true ? 'checked' : ''}> ${escape(name)} `;
      fs.append(lab);
    }
    const shown = new Set(Array.from(fs.querySelectorAll<HTMLInputElement>('input:checked')).map((i) => i.value));
    draw($('integrated-cell'), this.ex.size, integratedLayers(p.cell, structures, shown, this.gain));
    $('integrated-label').textContent = `${chosen.length} structure(s) generated in ${p.name} (seed ${seed})`;
    await this.volume?.setIntegrated(p.name, p.cell, structures);
  }

  async setupWalk(p: Point): Promise<void> {
    const role: ModelRole = this.site.models.target ? 'target' : 'reference';
    const m = this.site.models[role]!;
    if (!m.mean.length) return;
    this.walkDims = topDims(klPerDim(m), WALK_DIMS);
    const kl = klPerDim(m);
    this.selectedMean = (await this.ex.encode(role, [p.cell], [p.label])).mean[0];
    const box = $('sliders');
    box.innerHTML = '';
    for (const d of this.walkDims) {
      const lab = document.createElement('label');
      lab.innerHTML = `<span>dim ${d}<br><small>KL ${kl[d].toFixed(2)}</small></span><input type="range" min="-3" max="3" step="0.05" data-dim="${d}" aria-label="latent dim ${d}"><output></output>`;
      const input = lab.querySelector('input')!;
      input.value = String(this.selectedMean[d]);
      lab.querySelector('output')!.textContent = Number(input.value).toFixed(2);
      input.addEventListener('input', () => {
        lab.querySelector('output')!.textContent = Number(input.value).toFixed(2);
        this.walk();
      });
      box.append(lab);
    }
    $('walk-note').textContent = `Sliders on the ${this.walkDims.length} latent dims of largest KL of the ${role} model, starting at μ of ${p.name}; each move decodes.`;
    await this.decodeWalk();
  }

  /** A slider moved: decode now, or once the decode in flight ends (only the newest values). */
  walk(): void {
    if (this.walkBusy) {
      this.walkPending = true;
      return;
    }
    this.run(() => this.decodeWalk());
  }

  async decodeWalk(): Promise<void> {
    const p = this.selected;
    if (!p || !this.selectedMean) return;
    this.walkBusy = true;
    try {
      do {
        this.walkPending = false;
        const role: ModelRole = this.site.models.target ? 'target' : 'reference';
        const z = Float32Array.from(this.selectedMean);
        for (const input of Array.from($('sliders').querySelectorAll<HTMLInputElement>('input'))) z[Number(input.dataset.dim)] = Number(input.value);
        const t0 = performance.now();
        const [out] = await this.ex.decode(role, z, [p.cell], [p.label]);
        this.lastWalkMs = performance.now() - t0;
        draw($('walk-cell'), this.ex.size, cellLayers({ ...p.cell, ...out }, this.gain));
        $('walk-time').textContent = `decoded in ${this.lastWalkMs.toFixed(1)} ms`;
      } while (this.walkPending);
    } finally {
      this.walkBusy = false;
    }
  }

  async generate(): Promise<void> {
    const seed = Number($<HTMLInputElement>('seed').value) || 0;
    const n = Math.max(1, Math.min(16, Number($<HTMLInputElement>('count').value) || 1));
    const label = $<HTMLSelectElement>('gen-label').value;
    const { cells } = await this.ex.generate(seed, n);
    const tiles: Layer[][] = [];
    const files = [];
    for (const c of cells) {
      const s = label && this.site.models.target ? await this.ex.structuresIn(c, [label], seed + 1) : {};
      tiles.push(cellLayers({ ...c, structure: s[label] }, this.gain));
      files.push({ channels: { ...c, structure: s[label] }, label: label || null });
    }
    offerOmeTiffs($('ome-downloads'), this.ex.size, files, `statcell-generated-seed${seed}`, this.site.index.pixelSize);
    drawTiles($('generated'), this.ex.size, tiles);
    this.generated = { size: this.ex.size, tiles };
    ($('download') as HTMLButtonElement).disabled = false;
    say(`Generated ${n} cell(s) from z ~ N(0, I), seed ${seed}${label ? `, with ${label}` : ''}.`);
  }

  download(): void {
    $<HTMLCanvasElement>('generated').toBlob((blob) => {
      if (!blob) return;
      const a = document.createElement('a');
      a.href = URL.createObjectURL(blob);
      a.download = `statcell-generated-seed${$<HTMLInputElement>('seed').value}.png`;
      a.click();
      setTimeout(() => URL.revokeObjectURL(a.href), 1000);
    }, 'image/png');
  }

  /** The 3D view (web/volume.ts, loaded only here: 2D pages never fetch vole-core and three.js). */
  async open3d(): Promise<void> {
    const box = $('volume');
    box.hidden = false;
    try {
      const { VolumePanel } = await import('./volume.ts');
      this.volume = new VolumePanel(box, this.site.index.size, this.site.index.pixelSize, this.gain);
    } catch (e) {
      // The rest of the page works without it; say why.
      box.querySelector('.volume-note')!.textContent = `No 3D view: ${(e as Error).message}`;
      box.dataset.failed = 'true';
    }
  }

  /** Embeds a point's cell in the scatter's latent space and places it with the fitted projection. */
  async place(p: Point): Promise<void> {
    const { mean } = await this.ex.encode(this.role, [p.cell], [p.label]);
    const [[x, y]] = this.project([Array.from(mean[0])]);
    Object.assign(p, { x, y: y ?? 0 });
    this.points.push(p);
  }

  /** A dropped file or folder (web/drop.ts): read and preprocessed as in training (crop-pad to the model's size), embedded, shown, structures generated in it. */
  async dropped(d: Dropped): Promise<void> {
    const size = this.ex.size;
    const { cell, image: img, what } = await readDropped(d, this.site.index);
    const label = $<HTMLSelectElement>('drop-label').value || this.site.index.cells[0].label;
    const p: Point = { x: 0, y: 0, label, cell, name: d.name, index: -1 };
    await this.place(p);
    this.drawScatter();
    draw($('dropped'), size, cellLayers(cell, this.gain));
    const recon = await this.ex.reconstructCell(cell, label);
    draw($('dropped-recon'), size, cellLayers({ ...cell, ...recon }, this.gain));
    if (this.site.models.target) {
      const labels = this.trainedLabels().slice(0, 3);
      const s = Object.entries(await this.ex.structuresIn(cell, labels, 1));
      draw($('dropped-structures'), size, integratedLayers(cell, s, new Set(['membrane', 'dna', ...labels]), this.gain));
      $('dropped-structures-label').textContent = `generated in it: ${labels.join(', ')}`;
    }
    $('drop-status').textContent = `${d.name}: ${img.spatial.join('×')} → ${size.join('×')} (${what}), embedded at (${p.x.toFixed(2)}, ${p.y.toFixed(2)}) in the ${this.role} model's ${$<HTMLSelectElement>('projection').value.toUpperCase()}.`;
    $('drop-status').dataset.embedded = String(Number($('drop-status').dataset.embedded ?? 0) + 1);
    await this.select(p);
  }
}

const page = new Page();
// For the end-to-end tests and the benchmark: the page's explorer, and its palette for reference.
(globalThis as unknown as { statcell: unknown }).statcell = {
  page,
  PALETTE,
  /** web/explorer.ts fingerprint() (run in the model worker) as plain arrays (what the page hands to a test). */
  fingerprint: async (i = 0, batch = 0) => Object.fromEntries(Object.entries(await page.ex.fingerprint(i, batch)).map(([k, v]) => [k, Array.from(v)])),
  /** Milliseconds per decode of one latent code (the walk's call, a round trip to the model worker), over `n` decodes after one warm-up. */
  decodeMs: async (n = 20) => {
    const role: ModelRole = page.site.models.target ? 'target' : 'reference';
    const p = page.points[0];
    const z = new Float32Array(await page.ex.latent(role));
    await page.ex.decode(role, z, [p.cell], [p.label]);
    const t0 = performance.now();
    for (let k = 0; k < n; k++) {
      z[0] = k / n;
      await page.ex.decode(role, z, [p.cell], [p.label]);
    }
    return (performance.now() - t0) / n;
  },
};
page.start().catch(fail);
