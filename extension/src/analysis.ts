/**
 * The shape of `kiln show --json` (the componentizer's analysis) and what the Pipeline panel
 * draws from it. Field names are the CLI's; nothing here re-derives what Rust decided.
 */

export interface Diagnostic {
  /** The cell's index among all cells; `null` for the notebook as a whole. */
  cell: number | null;
  cell_id: string | null;
  /** 1-based line in the cell; 0 for the cell as a whole. */
  line: number;
  message: string;
}

export interface Flow {
  name: string;
  from: string;
  to: string;
  defined_in: number;
  line: number;
  type: string | null;
  codec: string | null;
  typed_by: string | null;
  /** Set by the extension, not the CLI: the type is the last one known for this value, kept
   * while the compiler has not answered since an edit (or could not, the code not building). */
  carried?: boolean;
}

export interface Parameter {
  name: string;
  default: string;
  cell: number;
  line: number;
  type: string | null;
  typed_by: string | null;
  /** As `Flow.carried`. */
  carried?: boolean;
}

/** The served `fn infer`: its cell, the line of the `fn`, each parameter (name, type as
 * written, line) and the return type. */
export interface Infer {
  cell: number;
  line: number;
  params: [string, string, number][];
  output: string;
}

/** `fn infer(a: &T, x: f64) -> f64`, as the panel shows it. */
export function inferSignature(infer: Infer): string {
  const params = infer.params.map(([name, type]) => `${name}: ${type}`).join(', ');
  return `fn infer(${params}) -> ${infer.output}`;
}

export interface Analysis {
  steps: Record<string, number[]>;
  untagged: number[];
  /** Cells tagged `skip`. */
  skipped: number[];
  parameters: Parameter[];
  flows: Flow[];
  infer: Infer | null;
  diagnostics: Diagnostic[];
}

/** A place in the notebook a panel row can take the user to. */
export interface Place {
  cell: number;
  line: number;
}

export interface StepNode {
  step: string;
  cells: number[];
}

export interface Edge {
  from: string;
  to: string;
  values: Flow[];
}

export interface PipelineGraph {
  nodes: StepNode[];
  edges: Edge[];
}

/** The steps that make components, in the order the work flows. */
export const STAGES = ['data', 'train', 'infer'];

/**
 * The graph the panel lays out: one node per component step, in order (a step with no cells
 * is still drawn, so a missing one shows), and one edge per pair of steps values cross,
 * with those values (each once) in the order the notebook defines them.
 */
export function pipelineGraph(analysis: Analysis): PipelineGraph {
  const nodes = STAGES.map(step => ({ step, cells: analysis.steps[step] ?? [] }));
  const edges: Edge[] = [];
  for (const flow of analysis.flows) {
    let edge = edges.find(e => e.from === flow.from && e.to === flow.to);
    if (!edge) {
      edge = { from: flow.from, to: flow.to, values: [] };
      edges.push(edge);
    }
    if (!edge.values.some(v => v.name === flow.name)) {
      edge.values.push(flow);
    }
  }
  const rank = (step: string) => {
    const at = STAGES.indexOf(step);
    return at < 0 ? -1 : at;
  };
  edges.sort((a, b) => rank(a.from) - rank(b.from) || rank(a.to) - rank(b.to));
  return { nodes, edges };
}

/** Problems by cell index (the notebook's own under -1), for marks on cells. */
export function problemsByCell(analysis: Analysis): Map<number, Diagnostic[]> {
  const byCell = new Map<number, Diagnostic[]>();
  for (const d of analysis.diagnostics) {
    const key = d.cell ?? -1;
    byCell.set(key, [...(byCell.get(key) ?? []), d]);
  }
  return byCell;
}

/**
 * `next` with the types it lacks taken from `previous`, marked `carried`: after an edit the
 * syntactic answer comes first, and a cell that stops compiling leaves the compiler with no
 * types at all; the panel then shows the last types it knew rather than none. A value is
 * the same value when its name and its steps (a flow) or its name (a parameter) are.
 */
export function carryTypes(previous: Analysis | null, next: Analysis): Analysis {
  if (!previous) {
    return next;
  }
  const flows = next.flows.map(flow => {
    if (flow.type !== null) {
      return flow;
    }
    const known = previous.flows.find(f => f.name === flow.name && f.from === flow.from && f.to === flow.to && f.type !== null);
    return known ? { ...flow, type: known.type, codec: flow.codec ?? known.codec, carried: true } : flow;
  });
  const parameters = next.parameters.map(p => {
    if (p.type !== null) {
      return p;
    }
    const known = previous.parameters.find(q => q.name === p.name && q.type !== null);
    return known ? { ...p, type: known.type, carried: true } : p;
  });
  return { ...next, flows, parameters };
}
