import { describe, expect, it } from 'vitest';

import { Analysis, Flow, carryTypes, inferSignature, pipelineGraph, problemsByCell } from './analysis';

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

describe('carryTypes', () => {
  const parameter = (name: string, type: string | null) => ({ name, default: '1', cell: 0, line: 1, type, typed_by: type ? 'compiler' : null });
  const typed = { ...analysis([flow('x', 'data', 'train', 'Vec<f64>'), flow('w', 'train', 'infer', 'f64')]), parameters: [parameter('rate', 'f32')] };

  it.each([
    ['a syntactic answer keeps the last types, marked carried', [flow('x', 'data', 'train', null)], [parameter('rate', null)], ['Vec<f64>', true], ['f32', true]],
    ['a new type replaces the old one', [flow('x', 'data', 'train', 'Vec<f32>')], [parameter('rate', 'f64')], ['Vec<f32>', undefined], ['f64', undefined]],
    ['a value that now crosses other steps is a new value', [flow('x', 'data', 'infer', null)], [parameter('epochs', null)], [null, undefined], [null, undefined]]
  ])('%s', (_, flows, parameters, [flowType, flowCarried], [paramType, paramCarried]) => {
    const next = carryTypes(typed, { ...analysis(flows), parameters });
    expect([next.flows[0].type, next.flows[0].carried]).toEqual([flowType, flowCarried]);
    expect([next.parameters[0].type, next.parameters[0].carried]).toEqual([paramType, paramCarried]);
  });

  it('without an earlier answer, nothing changes', () => {
    const next = analysis([flow('x', 'data', 'train', null)]);
    expect(carryTypes(null, next)).toBe(next);
  });
});
