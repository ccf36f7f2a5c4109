/**
 * The Experiments panel's logic, apart from the DOM: the store's shapes (`kiln-api`'s
 * `RunView`, `RunPage`, `Series`), the table's columns and their order, live updates merged
 * into what is shown, a filter error turned into a caret, the param diff and the curves as
 * a chart draws them. Every decision about runs (what matches a filter, what a series holds)
 * is the store's; this only lays its answers out.
 */

export type RunStatus = 'RUNNING' | 'SCHEDULED' | 'FINISHED' | 'FAILED' | 'KILLED';

export interface Metric {
  key: string;
  value: number;
  timestamp: number;
  step: number;
}

export interface RunView {
  id: string;
  experiment_id: string;
  name: string;
  status: RunStatus;
  source: 'notebook' | 'workflow' | 'external';
  start_time: number;
  end_time?: number;
  params: { key: string; value: string }[];
  metrics: Metric[];
  tags: { key: string; value: string }[];
  artifacts: { path: string; sha256: string; size: number; media_type: string }[];
  models?: { name: string; version: number }[];
}

export interface RunPage {
  runs: RunView[];
  next_page_token?: string;
  cursor: number;
}

export interface Experiment {
  id: string;
  name: string;
  created_at: number;
}

export type HistoryAxis = 'step' | 'time';

export interface Series {
  run_id: string;
  key: string;
  total: number;
  sampled: boolean;
  steps: number[];
  timestamps: number[];
  values: number[];
}

/** The tags the SDK puts on a run started in a notebook (`server-client/client/src/tracking.rs`). */
export const NOTEBOOK_TAG = 'kiln.notebook';
export const CELL_TAG = 'kiln.cell';

/** A column of the runs table: a run attribute, a param or a metric's latest value. */
export type Column =
  | { kind: 'attribute'; key: 'name' | 'status' | 'source' | 'start' | 'duration' | 'model' }
  | { kind: 'param'; key: string }
  | { kind: 'metric'; key: string };

export const ATTRIBUTES: Column[] = ['name', 'status', 'source', 'start', 'duration', 'model'].map(key => ({ kind: 'attribute', key }) as Column);

/** `params.lr`, `metrics.loss`, `attributes.start`: a column's id, as stored in the settings. */
export function columnId(column: Column): string {
  return `${column.kind === 'attribute' ? 'attributes' : `${column.kind}s`}.${column.key}`;
}

/** The column a `columnId` names (`params.lr`); an unknown prefix is read as a metric. */
export function columnFromId(id: string): Column {
  const at = id.indexOf('.');
  const [prefix, key] = at < 0 ? ['metrics', id] : [id.slice(0, at), id.slice(at + 1)];
  if (prefix === 'attributes') {
    return { kind: 'attribute', key } as Column;
  }
  return { kind: prefix === 'params' ? 'param' : 'metric', key };
}

/** Every column the runs have: the attributes, then each param and metric key once, sorted. */
export function columnsOf(runs: RunView[]): Column[] {
  const params = new Set<string>();
  const metrics = new Set<string>();
  for (const run of runs) {
    run.params.forEach(p => params.add(p.key));
    run.metrics.forEach(m => metrics.add(m.key));
  }
  return [
    ...ATTRIBUTES,
    ...[...params].sort().map(key => ({ kind: 'param', key }) as Column),
    ...[...metrics].sort().map(key => ({ kind: 'metric', key }) as Column)
  ];
}

/** The columns to show: those the user chose that exist, else all of them. */
export function visibleColumns(all: Column[], chosen: string[] | null): Column[] {
  if (!chosen || chosen.length === 0) {
    return all;
  }
  const wanted = new Set(chosen);
  const shown = all.filter(c => c.kind === 'attribute' ? c.key === 'name' || wanted.has(columnId(c)) : wanted.has(columnId(c)));
  return shown.length > 0 ? shown : all;
}

/** A run's duration: until it ended, or until `now` while it runs. */
export function durationOf(run: RunView, now: number): number {
  return (run.end_time ?? now) - run.start_time;
}

/** The value a cell of the table holds, for sorting: numbers as numbers, else text. */
export function valueOf(run: RunView, column: Column, now: number): number | string | null {
  switch (column.kind) {
    case 'param':
      return paramValue(run, column.key);
    case 'metric':
      return run.metrics.find(m => m.key === column.key)?.value ?? null;
    case 'attribute':
      switch (column.key) {
        case 'name':
          return run.name;
        case 'status':
          return run.status;
        case 'source':
          return run.source;
        case 'start':
          return run.start_time;
        case 'duration':
          return durationOf(run, now);
        case 'model':
          return (run.models ?? []).map(m => `${m.name}@${m.version}`).join(', ') || null;
      }
  }
}

function paramValue(run: RunView, key: string): number | string | null {
  const text = run.params.find(p => p.key === key)?.value;
  if (text === undefined) {
    return null;
  }
  const number = Number(text);
  return text.trim() !== '' && Number.isFinite(number) ? number : text;
}

/** Sorts runs by one column; runs without a value go last either way, then newest first. */
export function sortRuns(runs: RunView[], column: Column, descending: boolean, now: number): RunView[] {
  const keyed = runs.map(run => ({ run, value: valueOf(run, column, now) }));
  keyed.sort((a, b) => {
    if (a.value === null || b.value === null) {
      return a.value === b.value ? b.run.start_time - a.run.start_time : a.value === null ? 1 : -1;
    }
    let order: number;
    if (typeof a.value === 'number' && typeof b.value === 'number') {
      order = a.value - b.value;
    } else {
      order = String(a.value).localeCompare(String(b.value), undefined, { numeric: true });
    }
    if (order === 0) {
      return b.run.start_time - a.run.start_time;
    }
    return descending ? -order : order;
  });
  return keyed.map(k => k.run);
}

/** A number as a table shows it: short, and never blank for NaN or ±∞. */
export function formatNumber(value: number): string {
  if (Number.isNaN(value)) {
    return 'NaN';
  }
  if (!Number.isFinite(value)) {
    return value > 0 ? '+∞' : '−∞';
  }
  if (value !== 0 && (Math.abs(value) >= 1e6 || Math.abs(value) < 1e-4)) {
    return value.toExponential(3);
  }
  return String(Number(value.toPrecision(6)));
}

export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) {
    return `${s} s`;
  }
  const m = Math.floor(s / 60);
  if (m < 60) {
    return `${m} min ${s % 60} s`;
  }
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** What a table cell says. */
export function cellText(run: RunView, column: Column, now: number): string {
  const value = valueOf(run, column, now);
  if (value === null) {
    return '';
  }
  if (column.kind === 'attribute' && column.key === 'start') {
    return new Date(value as number).toLocaleString();
  }
  if (column.kind === 'attribute' && column.key === 'duration') {
    return formatDuration(value as number);
  }
  return typeof value === 'number' ? formatNumber(value) : value;
}

/**
 * Runs that changed (a live poll's answer) merged into those shown: a known run is replaced
 * where it stands, a new one joins; nothing else moves, so the row under the pointer stays.
 */
export function mergeRuns(shown: RunView[], changed: RunView[]): { runs: RunView[]; added: number; updated: number } {
  const index = new Map(shown.map((run, i) => [run.id, i]));
  const runs = shown.slice();
  let added = 0;
  let updated = 0;
  for (const run of changed) {
    const at = index.get(run.id);
    if (at === undefined) {
      index.set(run.id, runs.length);
      runs.push(run);
      added += 1;
    } else {
      runs[at] = run;
      updated += 1;
    }
  }
  return { runs, added, updated };
}

/** Where a filter went wrong, from the store's message (`filter: at column 13: …`). */
export interface FilterProblem {
  /** 0-based character offset into the filter, when the store named one. */
  offset: number | null;
  message: string;
}

export function filterProblem(message: string): FilterProblem {
  const found = /at column (\d+): (.*?)(?: \(in ".*"\))?$/s.exec(message);
  if (!found) {
    return { offset: null, message: message.replace(/^filter: /, '') };
  }
  return { offset: Number(found[1]) - 1, message: found[2] };
}

/** The filter with a caret line under the place the store named. */
export function caretLine(filter: string, problem: FilterProblem): string | null {
  if (problem.offset === null) {
    return null;
  }
  const offset = Math.min(Math.max(problem.offset, 0), [...filter].length);
  return `${' '.repeat(offset)}^`;
}

/** One row of the param diff: a key and each run's value (null where a run has none). */
export interface DiffRow {
  key: string;
  values: (string | null)[];
  differs: boolean;
}

/** The params of `runs` side by side; by default only those that differ between them. */
export function paramDiff(runs: RunView[], all: boolean): DiffRow[] {
  const keys = [...new Set(runs.flatMap(run => run.params.map(p => p.key)))].sort();
  const rows = keys.map(key => {
    const values = runs.map(run => run.params.find(p => p.key === key)?.value ?? null);
    return { key, values, differs: values.some(v => v !== values[0]) };
  });
  return all ? rows : rows.filter(row => row.differs);
}

/**
 * A series as `[x, y]` pairs for a chart, along the asked axis. A value that is not finite
 * (the store refuses them, but a series can come from elsewhere) is a gap, never a point
 * drawn at a made-up height.
 */
export function seriesPoints(series: Series, axis: HistoryAxis): [number, number | null][] {
  const xs = axis === 'step' ? series.steps : series.timestamps;
  return xs.map((x, i) => [x, Number.isFinite(series.values[i]) ? series.values[i] : null]);
}

/**
 * The points to draw for one curve: the whole range's down-sample, with the zoomed range's
 * detail in place of its points there, so the line is exact where the user looks and the
 * chart keeps its whole extent for the zoom bar.
 */
export function mergeDetail(
  whole: [number, number | null][],
  detail: [number, number | null][] | null,
  range: [number, number] | null
): [number, number | null][] {
  if (!detail || !range) {
    return whole;
  }
  return [...whole.filter(([x]) => x < range[0]), ...detail, ...whole.filter(([x]) => x > range[1])];
}

/** Whether a series' every point is positive, so a log scale can show it. */
export function loggable(series: Series[]): boolean {
  return series.every(s => s.values.every(v => !Number.isFinite(v) || v > 0));
}

/** The range a zoom shows, in axis units, from a chart's percentages of the full extent. */
export function zoomRange(extent: [number, number], startPercent: number, endPercent: number): [number, number] | null {
  if (startPercent <= 0 && endPercent >= 100) {
    return null;
  }
  const span = extent[1] - extent[0];
  return [Math.floor(extent[0] + (span * startPercent) / 100), Math.ceil(extent[0] + (span * endPercent) / 100)];
}

/** The axis extent of every series together. */
export function extentOf(series: Series[], axis: HistoryAxis): [number, number] | null {
  let lo = Infinity;
  let hi = -Infinity;
  for (const s of series) {
    const xs = axis === 'step' ? s.steps : s.timestamps;
    if (xs.length > 0) {
      lo = Math.min(lo, xs[0]);
      hi = Math.max(hi, xs[xs.length - 1]);
    }
  }
  return lo <= hi ? [lo, hi] : null;
}

/** The experiment to show first: the one this notebook's runs last logged to, else the newest. */
export function defaultExperiment(experiments: Experiment[], lastOfNotebook: RunView | null): Experiment | null {
  if (lastOfNotebook) {
    const found = experiments.find(e => e.id === lastOfNotebook.experiment_id);
    if (found) {
      return found;
    }
  }
  return experiments.reduce<Experiment | null>((newest, e) => (newest === null || e.created_at >= newest.created_at ? e : newest), null);
}

/**
 * A notebook path as the Jupyter server's contents API names it, from the path a run's
 * notebook tag holds: the kernel gets the notebook's absolute path when the session has a
 * name, else the API path itself. `null` when it lies outside every root given.
 */
export function apiPath(tagged: string, roots: string[]): string | null {
  if (tagged === '') {
    return null;
  }
  if (!tagged.startsWith('/')) {
    return tagged;
  }
  for (const root of roots) {
    const base = root.endsWith('/') ? root : `${root}/`;
    if (tagged.startsWith(base)) {
      return tagged.slice(base.length);
    }
  }
  return null;
}

export function tagOf(run: RunView, key: string): string | null {
  return run.tags.find(t => t.key === key)?.value ?? null;
}
