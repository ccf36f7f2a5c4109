/**
 * A status-bar item: whether the store and the registry answer and whether the current
 * notebook runs on Kiln's kernel, with the reason in the tooltip when not. Asked every few
 * seconds and on `kiln:check-status`.
 */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { IStatusBar } from '@jupyterlab/statusbar';
import { Widget } from '@lumino/widgets';

import { requestKiln } from './request';
import { CATEGORY } from './roles-plugin';
import { IKilnPipeline } from './tokens';

export const CHECK_STATUS = 'kiln:check-status';
const EVERY_MS = 10000;

interface Part {
  ok: boolean;
  reason?: string;
  url?: string | null;
  host?: string | null;
}

export interface Status {
  cli: Part;
  store: Part;
  registry: Part;
}

/** One line for each part: what it is and whether it answers, the reason when not. */
export function describe(status: Status | string, kernel: boolean | null): { text: string; title: string; ok: boolean } {
  if (typeof status === 'string') {
    return { text: 'Kiln: unreachable', title: `The Jupyter server's Kiln extension does not answer: ${status}`, ok: false };
  }
  const mark = (ok: boolean) => (ok ? '✓' : '✗');
  const parts: [string, Part][] = [
    ['store', status.store],
    ['registry', status.registry],
    ['kiln CLI', status.cli]
  ];
  const lines = parts.map(([name, p]) => `${name}: ${p.ok ? `answers${p.url ? ` (${p.url})` : p.host ? ` (${p.host})` : ''}` : p.reason ?? 'does not answer'}`);
  if (kernel !== null) {
    lines.push(`kernel: ${kernel ? "Kiln's" : 'not Kiln\'s: choose "Rust (Kiln)" to record cells and types'}`);
  }
  const ok = parts.every(([, p]) => p.ok) && kernel !== false;
  const text = `Kiln: store ${mark(status.store.ok)} registry ${mark(status.registry.ok)}${kernel === null ? '' : ` kernel ${mark(kernel)}`}`;
  return { text, title: lines.join('\n'), ok };
}

class StatusItem extends Widget {
  status: Status | string = 'not asked yet';

  constructor() {
    super();
    this.addClass('kiln-Status');
    this.node.setAttribute('role', 'status');
  }

  draw(kernel: boolean | null): void {
    const { text, title, ok } = describe(this.status, kernel);
    this.node.textContent = text;
    this.node.title = title;
    this.node.setAttribute('aria-label', title);
    this.toggleClass('kiln-mod-error', !ok);
  }
}

export const statusPlugin: JupyterFrontEndPlugin<void> = {
  id: 'kiln-jupyterlab:status',
  description: 'Whether the Kiln store, registry and kernel answer.',
  autoStart: true,
  requires: [INotebookTracker, IKilnPipeline],
  optional: [IStatusBar, ICommandPalette],
  activate: (app: JupyterFrontEnd, notebooks: INotebookTracker, pipeline: IKilnPipeline, statusBar: IStatusBar | null, palette: ICommandPalette | null) => {
    const item = new StatusItem();
    const kernel = () => (notebooks.currentWidget ? pipeline.isKilnNotebook(notebooks.currentWidget) : null);
    const check = async () => {
      try {
        item.status = await requestKiln<Status>('status');
      } catch (error) {
        item.status = error instanceof Error ? error.message : String(error);
      }
      item.draw(kernel());
    };
    app.commands.addCommand(CHECK_STATUS, {
      label: 'Check the Kiln Store, Registry and Kernel',
      execute: check
    });
    palette?.addItem({ command: CHECK_STATUS, category: CATEGORY });
    statusBar?.registerStatusItem('kiln-jupyterlab:status', { item, align: 'left', rank: 50 });
    notebooks.currentChanged.connect(() => item.draw(kernel()));
    notebooks.widgetAdded.connect((_, panel) => panel.sessionContext.kernelChanged.connect(() => item.draw(kernel())));
    void check();
    window.setInterval(() => void check(), EVERY_MS);
  }
};
