import { describe, expect, it } from 'vitest';

import { Analysis, Flow, inferSignature, pipelineGraph, problemsByCell } from './analysis';

const flow = (name: string, from: string, to: string, type: string | null = 'f64'): Flow => ({
  name,
  from,
  to,
  defined_in: 1,
  line: 1,
  type,
  codec: 'json',
  typed_by: 'compiler'
});

const analysis = (flows: Flow[], steps: Record<string, number[]> = { data: [1], train: [2], infer: [3] }): Analysis => ({
  steps,
  untagged: [],
  skipped: [],
  parameters: [],
  flows,
  infer: { cell: 3, line: 2, params: [['w', '&f64', 2], ['x', 'Vec<f64>', 2]], output: 'f64' },
  diagnostics: [
    { cell: 2, cell_id: 'b', line: 3, message: 'one' },
    { cell: null, cell_id: null, line: 0, message: 'whole' },
    { cell: 2, cell_id: 'b', line: 4, message: 'two' }
  ]
});

describe('pipelineGraph', () => {
  it('draws every component step in order, and a step without cells', () => {
    const graph = pipelineGraph(analysis([], { data: [1, 4], infer: [3] }));
    expect(graph.nodes).toEqual([
      { step: 'data', cells: [1, 4] },
      { step: 'train', cells: [] },
      { step: 'infer', cells: [3] }
    ]);
  });

  it('groups values by the pair of steps they cross, each once, in notebook order', () => {
    const graph = pipelineGraph(
      analysis([flow('w', 'train', 'infer'), flow('xs', 'data', 'train'), flow('ys', 'data', 'train'), flow('xs', 'data', 'train', 'Vec<f64>')])
    );
    expect(graph.edges.map(e => [e.from, e.to, e.values.map(v => `${v.name}: ${v.type}`)])).toEqual([
      ['data', 'train', ['xs: f64', 'ys: f64']],
      ['train', 'infer', ['w: f64']]
    ]);
  });
});

describe('problemsByCell', () => {
  it('gathers each cell problems, the notebook ones under -1', () => {
    const byCell = problemsByCell(analysis([]));
    expect([...byCell.keys()].sort()).toEqual([-1, 2]);
    expect(byCell.get(2)?.map(d => d.message)).toEqual(['one', 'two']);
  });
});

describe('inferSignature', () => {
  it('writes the served function as the notebook does', () => {
    const infer = analysis([]).infer;
    expect(infer && inferSignature(infer)).toBe('fn infer(w: &f64, x: Vec<f64>) -> f64');
  });
});
