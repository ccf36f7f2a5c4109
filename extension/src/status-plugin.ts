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
import { Status, describe } from './status';
import { CATEGORY } from './roles-plugin';
import { IKilnPipeline, IKilnStatus } from './tokens';

export const CHECK_STATUS = 'kiln:check-status';
const EVERY_MS = 10000;

class StatusItem extends Widget implements IKilnStatus {
  status: Status | string = 'not asked yet';

  get current(): Status | string {
    return this.status;
  }

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

export const statusPlugin: JupyterFrontEndPlugin<IKilnStatus> = {
  id: 'kiln-jupyterlab:status',
  description: 'Whether the Kiln store, registry and kernel answer.',
  autoStart: true,
  requires: [INotebookTracker, IKilnPipeline],
  optional: [IStatusBar, ICommandPalette],
  provides: IKilnStatus,
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
    return item;
  }
};
