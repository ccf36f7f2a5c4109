/**
 * A badge on every code cell with its role as Kiln reads it (a tag or a first-line
 * directive; untagged cells quietly marked as exploration), and a mark on cells with
 * problems, their messages in the tooltip. Drawn from the pipeline's latest analysis; a
 * windowed notebook re-attaches cells as they scroll in, so each is redrawn then.
 */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { Cell } from '@jupyterlab/cells';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';

import { Diagnostic, problemsByCell } from './analysis';
import { Badge, rolesOf } from './roles';
import { IKilnPipeline } from './tokens';

const BADGE = 'kiln-Badge';
const PROBLEM = 'kiln-mod-problem';

function draw(cell: Cell, role: Badge | undefined, problems: Diagnostic[] | undefined): void {
  let badge = cell.node.querySelector<HTMLElement>(`:scope > .${BADGE}`);
  if (role === undefined) {
    badge?.remove();
  } else {
    if (!badge) {
      badge = document.createElement('div');
      badge.className = BADGE;
      cell.node.prepend(badge);
    }
    badge.dataset.kilnRole = role;
    badge.textContent = role;
    badge.setAttribute('aria-label', role === 'exploration' ? 'Kiln: exploration, left out of components' : `Kiln role: ${role}`);
  }
  cell.node.classList.toggle(PROBLEM, problems !== undefined);
  if (problems) {
    cell.node.dataset.kilnProblems = problems.map(p => (p.line > 0 ? `line ${p.line}: ${p.message}` : p.message)).join('\n');
    badge?.setAttribute('title', cell.node.dataset.kilnProblems);
  } else {
    delete cell.node.dataset.kilnProblems;
    badge?.removeAttribute('title');
  }
}

function redraw(panel: NotebookPanel, pipeline: IKilnPipeline): void {
  const state = pipeline.current;
  const analysis = state && state.notebook === panel ? state.analysis : null;
  const roles = analysis ? rolesOf(analysis) : new Map<number, Badge>();
  const problems = analysis ? problemsByCell(analysis) : new Map<number, Diagnostic[]>();
  panel.content.widgets.forEach((cell, index) => draw(cell, roles.get(index), problems.get(index)));
}

export const badgesPlugin: JupyterFrontEndPlugin<void> = {
  id: 'kiln-jupyterlab:badges',
  description: 'Role badges and problem marks on notebook cells.',
  autoStart: true,
  requires: [INotebookTracker, IKilnPipeline],
  activate: (_app: JupyterFrontEnd, notebooks: INotebookTracker, pipeline: IKilnPipeline) => {
    pipeline.changed.connect((_, state) => {
      if (state) {
        redraw(state.notebook, pipeline);
      }
    });
    notebooks.widgetAdded.connect((_, panel) => {
      panel.content.cellInViewportChanged.connect(() => redraw(panel, pipeline));
    });
  }
};
