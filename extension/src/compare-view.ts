/**
 * The comparison of checked runs (opened by `kiln:compare-runs` in the main area): their
 * curves of one metric overlaid (by step or wall time, log scale, values on hover), a param
 * diff (only what differs, or everything), parallel coordinates of params → a metric, and a
 * scatter of any param or metric against another. Curves come down-sampled by the store;
 * zooming asks the store for the visible range, so the detail (every spike) is the store's
 * and never a guess. While a compared run is running, everything refreshes every two seconds.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { MainAreaWidget, Notification } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';
import type { EChartsType } from 'echarts/core';

import { element } from './dom';
import {
  HistoryAxis,
  RunView,
  Series,
  columnFromId,
  extentOf,
  formatNumber,
  loggable,
  mergeDetail,
  paramDiff,
  seriesPoints,
  valueOf,
  zoomRange
} from './experiments';
import * as store from './store';

const LIVE_MS = 2000;
/** Points asked per curve: about two per pixel of a wide chart. */
const MAX_POINTS = 2000;

type Charts = typeof import('./charts');

function labelled(text: string, control: HTMLElement): HTMLLabelElement {
  const label = element('label', 'kiln-CompareControl');
  label.append(document.createTextNode(`${text} `), control);
  return label;
}

function select(aria: string, options: string[], value: string): HTMLSelectElement {
  const node = element('select', 'jp-mod-styled');
  node.setAttribute('aria-label', aria);
  node.replaceChildren(...options.map(o => new Option(o, o)));
  if (options.includes(value)) {
    node.value = value;
  }
  return node;
}

/** Keeps `node`'s options in step with `options` (metrics a running run starts logging after
 * the comparison opened): the choice stays when it is still offered, else `fallback`, else
 * the first. Returns whether anything changed. */
export function setOptions(node: HTMLSelectElement, options: string[], fallback: string): boolean {
  const have = [...node.options].map(o => o.value);
  if (have.length === options.length && have.every((o, i) => o === options[i])) {
    return false;
  }
  const current = node.value;
  node.replaceChildren(...options.map(o => new Option(o, o)));
  node.value = options.includes(current) ? current : options.includes(fallback) ? fallback : (options[0] ?? '');
  return true;
}

function reason(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The metric keys and the scatter's dimensions (params, then metrics) of `runs`. */
function choices(runs: RunView[]): { metricKeys: string[]; dimensions: string[] } {
  const metricKeys = [...new Set(runs.flatMap(r => r.metrics.map(m => m.key)))].sort();
  const dimensions = [...new Set(runs.flatMap(r => r.params.map(p => `params.${p.key}`)))].sort().concat(metricKeys.map(k => `metrics.${k}`));
  return { metricKeys, dimensions };
}

export class ComparisonView extends Widget {
  private runs: RunView[];
  private charts: Charts | null = null;
  private curve: EChartsType | null = null;
  private parallel: EChartsType | null = null;
  private scatter: EChartsType | null = null;
  private overview: Series[] = [];
  private detail: Series[] = [];
  private range: [number, number] | null = null;
  private readonly metric: HTMLSelectElement;
  private readonly axis = select('X axis', ['step', 'time'], 'step');
  private readonly log = element('input', '');
  private readonly curveNote = element('p', 'kiln-CompareNote');
  private readonly curveNode = element('div', 'kiln-Chart kiln-CurveChart');
  private readonly allParams = element('input', '');
  private readonly diff = element('table', 'kiln-ParamDiff');
  private readonly parallelMetric: HTMLSelectElement;
  private readonly parallelNode = element('div', 'kiln-Chart kiln-ParallelChart');
  private readonly scatterX: HTMLSelectElement;
  private readonly scatterY: HTMLSelectElement;
  private readonly scatterNode = element('div', 'kiln-Chart kiln-ScatterChart');
  private readonly statusLine = element('p', 'kiln-CompareStatus');
  private timer = 0;
  private zoomTimer = 0;
  private generation = 0;

  constructor(runs: RunView[]) {
    super();
    this.runs = runs;
    this.addClass('kiln-Comparison');
    this.node.setAttribute('aria-label', 'Run comparison');
    const { metricKeys, dimensions } = choices(runs);
    this.metric = select('Metric', metricKeys, metricKeys.includes('loss') ? 'loss' : (metricKeys[0] ?? ''));
    this.log.type = 'checkbox';
    this.log.setAttribute('aria-label', 'Log scale');
    this.allParams.type = 'checkbox';
    this.allParams.setAttribute('aria-label', 'Show all params');
    this.parallelMetric = select('Parallel coordinates metric', metricKeys, this.metric.value);
    this.scatterX = select('Scatter x', dimensions, dimensions[0] ?? '');
    this.scatterY = select('Scatter y', dimensions, dimensions[dimensions.length - 1] ?? '');
    this.statusLine.setAttribute('role', 'status');
    this.curveNote.setAttribute('role', 'status');

    const curves = element('section', 'kiln-CompareSection');
    curves.setAttribute('aria-label', 'Metric curves');
    const controls = element('div', 'kiln-CompareControls');
    controls.append(labelled('Metric', this.metric), labelled('X axis', this.axis), labelled('Log scale', this.log));
    curves.append(element('h3', '', 'Curves'), controls, this.curveNode, this.curveNote);
    const params = element('section', 'kiln-CompareSection');
    params.setAttribute('aria-label', 'Param diff');
    params.append(element('h3', '', 'Params'), labelled('Show all params', this.allParams), this.diff);
    const parallel = element('section', 'kiln-CompareSection');
    parallel.setAttribute('aria-label', 'Parallel coordinates');
    parallel.append(element('h3', '', 'Parallel coordinates'), labelled('Metric', this.parallelMetric), this.parallelNode);
    const scatter = element('section', 'kiln-CompareSection');
    scatter.setAttribute('aria-label', 'Scatter');
    const scatterControls = element('div', 'kiln-CompareControls');
    scatterControls.append(labelled('x', this.scatterX), labelled('y', this.scatterY));
    scatter.append(element('h3', '', 'Scatter'), scatterControls, this.scatterNode);
    this.node.append(this.statusLine, curves, params, parallel, scatter);

    this.metric.addEventListener('change', () => void this.loadCurves(true));
    this.axis.addEventListener('change', () => void this.loadCurves(true));
    this.log.addEventListener('change', () => this.drawCurves());
    this.allParams.addEventListener('change', () => this.drawDiff());
    this.parallelMetric.addEventListener('change', () => this.drawParallel());
    this.scatterX.addEventListener('change', () => this.drawScatter());
    this.scatterY.addEventListener('change', () => this.drawScatter());
  }

  get shownRuns(): RunView[] {
    return this.runs;
  }

  protected onAfterAttach(): void {
    void this.start();
  }

  protected onBeforeDetach(): void {
    window.clearTimeout(this.timer);
    window.clearTimeout(this.zoomTimer);
    // Bumped so an answer already on its way draws nothing on the disposed charts.
    this.generation++;
    this.curve?.dispose();
    this.parallel?.dispose();
    this.scatter?.dispose();
    this.curve = this.parallel = this.scatter = null;
  }

  protected onResize(): void {
    this.curve?.resize();
    this.parallel?.resize();
    this.scatter?.resize();
  }

  private async start(): Promise<void> {
    try {
      this.charts = await import('./charts');
    } catch (error) {
      this.statusLine.textContent = `the charts could not load: ${reason(error)}`;
      Notification.error(`Kiln: the comparison's charts could not load: ${reason(error)}`);
      return;
    }
    if (!this.isAttached) {
      // Closed while the charts loaded.
      return;
    }
    const { echarts } = this.charts;
    this.curve = echarts.init(this.curveNode);
    this.parallel = echarts.init(this.parallelNode);
    this.scatter = echarts.init(this.scatterNode);
    this.curve.on('datazoom', () => this.zoomed());
    this.drawStatus();
    this.drawDiff();
    this.drawParallel();
    this.drawScatter();
    await this.loadCurves(true);
    this.live();
  }

  /** The curves of the chosen metric: the whole range, then the zoomed range's detail. */
  private async loadCurves(reset: boolean): Promise<void> {
    const key = this.metric.value;
    if (!key) {
      this.curveNote.textContent = 'These runs logged no metric.';
      return;
    }
    const generation = ++this.generation;
    const axis = this.axis.value as HistoryAxis;
    if (reset) {
      this.range = null;
      this.detail = [];
    }
    try {
      const ids = this.runs.map(r => r.id);
      const overview = await store.histories(ids, [key], axis, MAX_POINTS, null);
      const detail = this.range ? await store.histories(ids, [key], axis, MAX_POINTS, this.range) : null;
      if (generation !== this.generation) {
        return;
      }
      this.overview = overview.series;
      this.detail = detail?.series ?? [];
      this.drawCurves(reset);
    } catch (error) {
      if (generation !== this.generation) {
        return;
      }
      this.curveNote.textContent = `the curves could not be read: ${reason(error)}`;
      Notification.error(`Kiln: the curves of ${key} could not be read: ${reason(error)}`);
    }
  }

  private zoomed(): void {
    window.clearTimeout(this.zoomTimer);
    this.zoomTimer = window.setTimeout(() => {
      const axis = this.axis.value as HistoryAxis;
      const extent = extentOf(this.overview, axis);
      const option = this.curve?.getOption() as { dataZoom?: { start?: number; end?: number }[] } | undefined;
      const zoom = option?.dataZoom?.[0];
      if (!extent || !zoom) {
        return;
      }
      this.range = zoomRange(extent, zoom.start ?? 0, zoom.end ?? 100);
      void this.loadCurves(false);
    }, 250);
  }

  private drawCurves(resetZoom = false): void {
    if (!this.curve) {
      return;
    }
    const axis = this.axis.value as HistoryAxis;
    const names = new Map(this.runs.map(r => [r.id, r.name]));
    const canLog = loggable(this.overview);
    this.log.disabled = !canLog;
    this.log.title = canLog ? '' : 'A log scale needs every value above zero';
    const useLog = canLog && this.log.checked;
    const series = this.overview.map(whole => {
      const detail = this.detail.find(d => d.run_id === whole.run_id) ?? null;
      return {
        type: 'line',
        name: names.get(whole.run_id) ?? whole.run_id,
        id: whole.run_id,
        showSymbol: false,
        connectNulls: false,
        sampling: undefined,
        data: mergeDetail(seriesPoints(whole, axis), detail ? seriesPoints(detail, axis) : null, this.range)
      };
    });
    const option: Record<string, unknown> = {
      animation: false,
      aria: { enabled: true },
      legend: { top: 0, type: 'scroll' },
      grid: { left: 60, right: 24, top: 56, bottom: 64 },
      tooltip: { trigger: 'axis', valueFormatter: (v: unknown) => (typeof v === 'number' ? formatNumber(v) : String(v)) },
      xAxis: { type: axis === 'time' ? 'time' : 'value', name: axis, nameLocation: 'middle', nameGap: 28, scale: true },
      // The axis name sits left of the plot, under the legend rather than on it.
      yAxis: { type: useLog ? 'log' : 'value', name: this.metric.value, nameLocation: 'end', nameTextStyle: { align: 'right' }, scale: true },
      series
    };
    if (resetZoom) {
      option.dataZoom = [
        { type: 'inside', xAxisIndex: 0, filterMode: 'none' },
        { type: 'slider', xAxisIndex: 0, filterMode: 'none', bottom: 8 }
      ];
    }
    this.curve.setOption(option, { replaceMerge: ['series'] });
    const total = this.overview.reduce((n, s) => n + s.total, 0);
    const drawn = series.reduce((n, s) => n + s.data.length, 0);
    // What the canvas shows, for people and tests alike: how many curves and points.
    this.curveNode.dataset.series = String(series.length);
    this.curveNode.dataset.points = String(drawn);
    this.curveNode.dataset.total = String(total);
    const sampled = this.overview.some(s => s.sampled);
    this.curveNote.textContent =
      `${this.overview.length} curve${this.overview.length === 1 ? '' : 's'} of ${this.metric.value}: ${drawn} points drawn of ${total}` +
      (sampled ? ' (down-sampled by the store, every bucket keeps its extremes; zoom in for detail)' : '');
  }

  private drawStatus(): void {
    const states = this.runs.map(r => `${r.name}: ${r.status.toLowerCase()}`);
    this.statusLine.textContent = states.join(' · ');
  }

  private drawDiff(): void {
    const rows = paramDiff(this.runs, this.allParams.checked);
    const head = element('tr', '');
    head.append(element('th', '', 'param'), ...this.runs.map(r => element('th', '', r.name)));
    const body = rows.map(row => {
      const tr = element('tr', row.differs ? 'kiln-mod-differs' : '');
      tr.append(element('td', '', row.key), ...row.values.map(v => element('td', '', v ?? '—')));
      return tr;
    });
    const caption = element('caption', '', rows.length === 0 ? (this.allParams.checked ? 'These runs logged no params.' : 'Every param is the same in these runs.') : '');
    this.diff.replaceChildren(caption, head, ...body);
  }

  private drawParallel(): void {
    if (!this.parallel) {
      return;
    }
    const keys = [...new Set(this.runs.flatMap(r => r.params.map(p => p.key)))].sort();
    const metric = this.parallelMetric.value;
    const dims = keys.map(k => `params.${k}`).concat(metric ? [`metrics.${metric}`] : []);
    const columns = dims.map(columnFromId);
    const now = Date.now();
    const numeric = columns.map(c => this.runs.every(r => typeof (valueOf(r, c, now) ?? 0) === 'number'));
    const parallelAxis = dims.map((name, dim) => {
      if (numeric[dim]) {
        return { dim, name, type: 'value', scale: true };
      }
      const values = [...new Set(this.runs.map(r => String(valueOf(r, columns[dim], now) ?? '—')))].sort();
      return { dim, name, type: 'category', data: values };
    });
    const data = this.runs.map(r => ({
      name: r.name,
      value: columns.map((c, dim) => {
        const v = valueOf(r, c, now);
        return numeric[dim] ? v : String(v ?? '—');
      })
    }));
    this.parallel.setOption(
      {
        animation: false,
        aria: { enabled: true },
        tooltip: { trigger: 'item', formatter: (p: { name: string }) => p.name },
        parallel: { left: 60, right: 80, top: 40, bottom: 30 },
        parallelAxis,
        series: [{ type: 'parallel', lineStyle: { width: 2, opacity: 0.7 }, data }]
      },
      { notMerge: true }
    );
  }

  private drawScatter(): void {
    if (!this.scatter) {
      return;
    }
    const [x, y] = [columnFromId(this.scatterX.value), columnFromId(this.scatterY.value)];
    const now = Date.now();
    const points = this.runs
      .map(r => ({ name: r.name, value: [valueOf(r, x, now), valueOf(r, y, now)] }))
      .filter(p => p.value.every(v => v !== null));
    const kind = (c: number) => (points.every(p => typeof p.value[c] === 'number') ? 'value' : 'category');
    this.scatter.setOption(
      {
        animation: false,
        aria: { enabled: true },
        grid: { left: 60, right: 24, top: 24, bottom: 48 },
        tooltip: { trigger: 'item', formatter: (p: { name: string; value: unknown[] }) => `${p.name}: ${p.value.map(v => (typeof v === 'number' ? formatNumber(v) : String(v))).join(', ')}` },
        xAxis: { type: kind(0), name: this.scatterX.value, nameLocation: 'middle', nameGap: 28, scale: true },
        yAxis: { type: kind(1), name: this.scatterY.value, scale: true },
        series: [{ type: 'scatter', symbolSize: 10, data: points }]
      },
      { notMerge: true }
    );
  }

  /** While a compared run runs: its status, values and curves again every two seconds. */
  private live(): void {
    window.clearTimeout(this.timer);
    if (!this.runs.some(r => r.status === 'RUNNING')) {
      return;
    }
    this.timer = window.setTimeout(async () => {
      // Each run on its own: one that cannot be read (deleted, or the store blinked) keeps
      // its last values and says so; the others go on updating.
      const answers = await Promise.allSettled(this.runs.map(r => store.run(r.id)));
      if (!this.isAttached) {
        return;
      }
      const lost: string[] = [];
      this.runs = this.runs.map((old, i) => {
        const answer = answers[i];
        if (answer.status === 'fulfilled') {
          return answer.value;
        }
        lost.push(`${old.name}: ${reason(answer.reason)}`);
        return old;
      });
      this.drawStatus();
      if (lost.length > 0) {
        this.statusLine.textContent += ` · not updated (${lost.join('; ')})`;
      }
      // A run opened before its first metric arrived: its metrics join the choices now.
      const { metricKeys, dimensions } = choices(this.runs);
      const preferred = metricKeys.includes('loss') ? 'loss' : (metricKeys[0] ?? '');
      setOptions(this.metric, metricKeys, preferred);
      setOptions(this.parallelMetric, metricKeys, this.metric.value);
      setOptions(this.scatterX, dimensions, dimensions[0] ?? '');
      setOptions(this.scatterY, dimensions, dimensions[dimensions.length - 1] ?? '');
      this.drawDiff();
      this.drawParallel();
      this.drawScatter();
      await this.loadCurves(false);
      if (this.isAttached) {
        this.live();
      }
    }, LIVE_MS);
  }
}

/** Opens a comparison of `runs` in the main area. */
export function openComparison(app: JupyterFrontEnd, runs: RunView[]): MainAreaWidget<ComparisonView> {
  const content = new ComparisonView(runs);
  const widget = new MainAreaWidget({ content });
  widget.id = `kiln-compare-${Date.now()}`;
  widget.title.label = `Compare ${runs.length} run${runs.length === 1 ? '' : 's'}`;
  widget.title.caption = runs.map(r => r.name).join(', ');
  widget.title.closable = true;
  app.shell.add(widget, 'main', { mode: 'split-right' });
  app.shell.activateById(widget.id);
  return widget;
}
