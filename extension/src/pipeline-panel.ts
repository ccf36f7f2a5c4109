/**
 * The "Pipeline" side panel: for the current notebook, the steps as a graph
 * (data → train → infer), on each edge the values that cross it with their Rust types, the
 * parameters with their values, the served `fn infer`, and every problem `kiln show`
 * found. Rows that name a place take the user to that cell and line.
 */
import { JupyterFrontEnd, JupyterFrontEndPlugin, ILayoutRestorer } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { LabIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { Analysis, inferSignature, pipelineGraph } from './analysis';
import { element } from './dom';
import { reveal } from './places';
import { CATEGORY } from './roles-plugin';
import { IKilnPipeline, IPipelineState } from './tokens';

export const OPEN_PIPELINE = 'kiln:open-pipeline';

const pipelineIcon = new LabIcon({
  name: 'kiln:pipeline',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><g class="jp-icon3" fill="#616161">' +
    '<rect x="2" y="9" width="5" height="6" rx="1"/><rect x="9.5" y="9" width="5" height="6" rx="1"/>' +
    '<rect x="17" y="9" width="5" height="6" rx="1"/><rect x="7" y="11.3" width="2.5" height="1.4"/>' +
    '<rect x="14.5" y="11.3" width="2.5" height="1.4"/></g></svg>'
});

/** A value's type; a carried one (the last known, not yet confirmed since an edit) says so. */
function typeOf(value: { type: string | null; carried?: boolean }): HTMLElement {
  const node = element('code', `kiln-ValueType${value.carried ? ' kiln-mod-carried' : ''}`, value.type ?? '…');
  if (value.carried) {
    node.title = 'The last type the compiler gave; it has not confirmed it since the edit';
  }
  return node;
}

export class PipelinePanel extends Widget {
  constructor(pipeline: IKilnPipeline) {
    super();
    this.id = 'kiln-pipeline';
    this.addClass('kiln-PipelinePanel');
    this.title.label = 'Pipeline';
    this.title.caption = 'Kiln: the pipeline of the current notebook';
    this.title.icon = pipelineIcon;
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', 'Kiln pipeline');
    pipeline.changed.connect((_, state) => this.render(state), this);
    this.render(pipeline.current);
  }

  private render(state: IPipelineState | null): void {
    this.node.replaceChildren();
    if (!state) {
      this.node.append(element('p', 'kiln-Empty', 'Open a notebook to see its pipeline.'));
      return;
    }
    const header = element('div', 'kiln-PipelineHeader');
    header.append(element('span', 'kiln-PipelineName', state.notebook.context.path));
    const status = state.error ? `not updated: ${state.error}` : state.typed ? 'types from the compiler' : 'reading the cells; types to follow';
    const badge = element('span', `kiln-PipelineStatus${state.error ? ' kiln-mod-error' : ''}`, status);
    badge.setAttribute('role', 'status');
    header.append(badge);
    this.node.append(header);
    if (state.analysis) {
      this.renderAnalysis(state, state.analysis);
    }
  }

  private place(node: HTMLElement, state: IPipelineState, cell: number | null, line: number): void {
    if (cell === null) {
      return;
    }
    node.classList.add('kiln-mod-link');
    node.tabIndex = 0;
    node.setAttribute('role', 'link');
    const go = () => void reveal(state.notebook, cell, line);
    node.addEventListener('click', go);
    node.addEventListener('keydown', event => {
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        go();
      }
    });
  }

  private renderAnalysis(state: IPipelineState, analysis: Analysis): void {
    const graph = pipelineGraph(analysis);
    const flow = element('ol', 'kiln-Graph');
    flow.setAttribute('aria-label', 'Steps');
    graph.nodes.forEach((node, i) => {
      const step = element('li', 'kiln-Step');
      step.dataset.kilnStep = node.step;
      step.append(element('span', 'kiln-StepName', node.step));
      step.append(element('span', 'kiln-StepCells', node.cells.length ? `cells ${node.cells.join(', ')}` : 'no cells'));
      if (node.cells.length) {
        this.place(step, state, node.cells[0], 0);
      }
      flow.append(step);
      const next = graph.nodes[i + 1];
      if (next) {
        const edge = element('li', 'kiln-Edge');
        edge.dataset.kilnEdge = `${node.step}->${next.step}`;
        const values = graph.edges.find(e => e.from === node.step && e.to === next.step)?.values ?? [];
        if (values.length === 0) {
          edge.append(element('span', 'kiln-Value kiln-mod-none', 'nothing crosses'));
        }
        for (const value of values) {
          const row = element('span', 'kiln-Value');
          row.dataset.kilnValue = value.name;
          row.append(element('code', 'kiln-ValueName', value.name));
          row.append(typeOf(value));
          if (value.codec) {
            row.append(element('span', 'kiln-ValueCodec', value.codec));
          }
          this.place(row, state, value.defined_in, value.line);
          edge.append(row);
        }
        flow.append(edge);
      }
    });
    this.node.append(element('h3', 'kiln-Heading', 'Steps'), flow);

    if (analysis.parameters.length) {
      const list = element('ul', 'kiln-Parameters');
      for (const p of analysis.parameters) {
        const row = element('li', 'kiln-Parameter');
        row.dataset.kilnParameter = p.name;
        row.append(element('code', 'kiln-ValueName', p.name), typeOf(p), element('span', 'kiln-ParameterDefault', `= ${p.default}`));
        this.place(row, state, p.cell, p.line);
        list.append(row);
      }
      this.node.append(element('h3', 'kiln-Heading', 'Parameters'), list);
    }

    if (analysis.infer) {
      const served = element('code', 'kiln-Served', inferSignature(analysis.infer));
      this.place(served, state, analysis.infer.cell, analysis.infer.line);
      this.node.append(element('h3', 'kiln-Heading', 'Served'), served);
    }

    const problems = element('ul', 'kiln-Diagnostics');
    problems.setAttribute('aria-label', 'Problems');
    for (const d of analysis.diagnostics) {
      const where = d.cell === null ? 'notebook' : d.line > 0 ? `cell ${d.cell}, line ${d.line}` : `cell ${d.cell}`;
      const row = element('li', 'kiln-Diagnostic');
      row.append(element('span', 'kiln-DiagnosticPlace', where), element('span', 'kiln-DiagnosticMessage', d.message));
      this.place(row, state, d.cell, d.line);
      problems.append(row);
    }
    const heading = analysis.diagnostics.length ? `Problems (${analysis.diagnostics.length})` : 'No problems';
    this.node.append(element('h3', 'kiln-Heading', heading), problems);
  }
}

export const pipelinePanelPlugin: JupyterFrontEndPlugin<void> = {
  id: 'kiln-jupyterlab:pipeline-panel',
  description: 'The Pipeline side panel.',
  autoStart: true,
  requires: [IKilnPipeline],
  optional: [ILayoutRestorer, ICommandPalette],
  activate: (app: JupyterFrontEnd, pipeline: IKilnPipeline, restorer: ILayoutRestorer | null, palette: ICommandPalette | null) => {
    const panel = new PipelinePanel(pipeline);
    app.shell.add(panel, 'right', { rank: 600 });
    restorer?.add(panel, panel.id);
    app.commands.addCommand(OPEN_PIPELINE, {
      label: 'Open the Pipeline Panel',
      caption: 'Show the current notebook\'s Kiln pipeline: steps, values and their types, problems',
      execute: () => app.shell.activateById(panel.id)
    });
    palette?.addItem({ command: OPEN_PIPELINE, category: CATEGORY });
  }
};
