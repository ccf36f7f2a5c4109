import { describe, expect, it } from 'vitest';

import {
  RunView,
  Series,
  apiPath,
  caretLine,
  columnFromId,
  columnId,
  columnsOf,
  defaultExperiment,
  extentOf,
  filterProblem,
  formatNumber,
  loggable,
  mergeDetail,
  mergeRuns,
  paramDiff,
  seriesPoints,
  sortRuns,
  visibleColumns,
  zoomRange
} from './experiments';

function run(id: string, params: Record<string, string>, metrics: Record<string, number>, extra: Partial<RunView> = {}): RunView {
  return {
    id,
    experiment_id: '1',
    name: id,
    status: 'FINISHED',
    source: 'notebook',
    start_time: 1000,
    params: Object.entries(params).map(([key, value]) => ({ key, value })),
    metrics: Object.entries(metrics).map(([key, value]) => ({ key, value, timestamp: 0, step: 0 })),
    tags: [],
    artifacts: [],
    ...extra
  };
}

describe('the filter error the store gives, under the filter', () => {
  it.each([
    [
      'an operator it does not know',
      'metrics.acc ~ 1',
      'filter: at column 13: expected an operator (=, !=, >, >=, <, <=, LIKE, ILIKE, IN, NOT IN) (in "metrics.acc ~ 1")',
      12,
      'expected an operator (=, !=, >, >=, <, <=, LIKE, ILIKE, IN, NOT IN)',
      '            ^'
    ],
    ['a quote left open', "tags.x = 'open", 'filter: at column 10: unterminated \' quote (in "tags.x = \'open")', 9, "unterminated ' quote", '         ^'],
    // Columns count characters (the store counts them so), not UTF-16 units or bytes.
    ['after a wide character', "tags.é = 'open", 'filter: at column 10: unterminated \' quote (in "tags.é = \'open")', 9, "unterminated ' quote", '         ^'],
    ['a message without a place', 'x', 'filter: too long', null, 'too long', null]
  ] as [string, string, string, number | null, string, string | null][])('%s', (_, filter, message, offset, text, caret) => {
    const problem = filterProblem(message);
    expect(problem).toEqual({ offset, message: text });
    expect(caretLine(filter, problem)).toBe(caret);
  });
});

describe('param diff', () => {
  const runs = [run('a', { lr: '0.1', epochs: '10', seed: '1' }, {}), run('b', { lr: '0.01', epochs: '10' }, {})];
  it('shows only the params that differ, a missing one counting as different', () => {
    expect(paramDiff(runs, false)).toEqual([
      { key: 'lr', values: ['0.1', '0.01'], differs: true },
      { key: 'seed', values: ['1', null], differs: true }
    ]);
  });
  it('shows every param on request', () => {
    expect(paramDiff(runs, true).map(r => [r.key, r.differs])).toEqual([
      ['epochs', false],
      ['lr', true],
      ['seed', true]
    ]);
  });
});

describe('down-sampled series', () => {
  const series: Series = { run_id: 'a', key: 'loss', total: 5, sampled: true, steps: [0, 5, 9], timestamps: [100, 150, 190], values: [1, NaN, Infinity] };
  it('are points along the axis asked, with a gap for a value that is not finite', () => {
    expect(seriesPoints(series, 'step')).toEqual([
      [0, 1],
      [5, null],
      [9, null]
    ]);
    expect(seriesPoints(series, 'time').map(p => p[0])).toEqual([100, 150, 190]);
  });
  it('take the zoomed detail in place of their points in that range, keeping the rest', () => {
    const whole: [number, number | null][] = [
      [0, 1],
      [50, 2],
      [100, 3]
    ];
    const detail: [number, number | null][] = [
      [40, 5],
      [45, 9],
      [60, 1]
    ];
    expect(mergeDetail(whole, detail, [40, 60])).toEqual([[0, 1], [40, 5], [45, 9], [60, 1], [100, 3]]);
    expect(mergeDetail(whole, null, [40, 60])).toBe(whole);
  });
  it('zoom percentages become a range of the axis, and the whole range none', () => {
    expect(zoomRange([0, 99_999], 0, 100)).toBeNull();
    expect(zoomRange([0, 99_999], 25, 50)).toEqual([24_999, 50_000]);
  });
  it('extent covers every series; an empty one is ignored', () => {
    const empty: Series = { ...series, steps: [], timestamps: [], values: [] };
    expect(extentOf([series, empty, { ...series, steps: [3, 20] }], 'step')).toEqual([0, 20]);
    expect(extentOf([empty], 'step')).toBeNull();
  });
  it('a log scale needs positive values', () => {
    expect(loggable([{ ...series, values: [1, 2] }])).toBe(true);
    expect(loggable([{ ...series, values: [1, 0] }])).toBe(false);
  });
});

describe('the runs table', () => {
  const runs = [
    run('a', { lr: '0.1' }, { acc: 0.5 }, { start_time: 1 }),
    run('b', { lr: '0.01' }, { acc: 0.9 }, { start_time: 2 }),
    run('c', {}, {}, { start_time: 3 }),
    run('d', { lr: 'auto' }, { acc: 0.7 }, { start_time: 4 })
  ];
  it('has a column for every attribute, param and metric', () => {
    expect(columnsOf(runs).map(columnId)).toEqual([
      'attributes.name',
      'attributes.status',
      'attributes.source',
      'attributes.start',
      'attributes.duration',
      'attributes.model',
      'params.lr',
      'metrics.acc'
    ]);
  });
  it('sorts numbers as numbers and puts runs without a value last', () => {
    expect(sortRuns(runs, columnFromId('metrics.acc'), true, 0).map(r => r.id)).toEqual(['b', 'd', 'a', 'c']);
    expect(sortRuns(runs, columnFromId('metrics.acc'), false, 0).map(r => r.id)).toEqual(['a', 'd', 'b', 'c']);
    expect(sortRuns(runs, columnFromId('params.lr'), false, 0).map(r => r.id)).toEqual(['b', 'a', 'd', 'c']);
  });
  it('shows the chosen columns, always with the name, else all', () => {
    const all = columnsOf(runs);
    expect(visibleColumns(all, ['metrics.acc']).map(columnId)).toEqual(['attributes.name', 'metrics.acc']);
    expect(visibleColumns(all, ['metrics.gone']).map(columnId)).toEqual(['attributes.name']);
    expect(visibleColumns(all, null)).toBe(all);
  });
  it('merges live changes in place and adds new runs at the end', () => {
    const changed = [run('b', { lr: '0.01' }, { acc: 0.95 }), run('e', {}, {})];
    const merged = mergeRuns(runs, changed);
    expect(merged.runs.map(r => r.id)).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(merged.runs[1].metrics[0].value).toBe(0.95);
    expect([merged.added, merged.updated]).toEqual([1, 1]);
  });
  it.each([
    [0.123456789, '0.123457'],
    [1e-7, '1.000e-7'],
    [12345678, '1.235e+7'],
    [NaN, 'NaN'],
    [Infinity, '+∞'],
    [-Infinity, '−∞'],
    [0, '0']
  ])('writes %s as %s', (value, text) => {
    expect(formatNumber(value)).toBe(text);
  });
});

describe('where a run came from', () => {
  it('finds its notebook under the server root, or takes a relative path as it is', () => {
    expect(apiPath('/srv/notebooks/classifier.ipynb', ['/srv'])).toBe('notebooks/classifier.ipynb');
    expect(apiPath('/srv/notebooks/classifier.ipynb', ['/srv/'])).toBe('notebooks/classifier.ipynb');
    expect(apiPath('notebooks/classifier.ipynb', ['/srv'])).toBe('notebooks/classifier.ipynb');
    expect(apiPath('/elsewhere/x.ipynb', ['/srv'])).toBeNull();
    expect(apiPath('', ['/srv'])).toBeNull();
  });
  it("shows the experiment the notebook last logged to, else the newest", () => {
    const experiments = [
      { id: '1', name: 'old', created_at: 1 },
      { id: '2', name: 'new', created_at: 2 }
    ];
    expect(defaultExperiment(experiments, run('r', {}, {}, { experiment_id: '1' }))?.name).toBe('old');
    expect(defaultExperiment(experiments, null)?.name).toBe('new');
    expect(defaultExperiment([], null)).toBeNull();
  });
});
