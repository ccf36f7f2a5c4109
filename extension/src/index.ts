/** Kiln's JupyterLab extension: small plugins around shared services (`tokens.ts`). */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { INotebookTracker } from '@jupyterlab/notebook';

import { badgesPlugin } from './badges-plugin';
import { componentizePlugin } from './componentize-plugin';
import { deploymentsPlugin } from './deployments-panel';
import { experimentsPlugin } from './experiments-panel';
import { pipelinePanelPlugin } from './pipeline-panel';
import { rolesPlugin } from './roles-plugin';
import { statusPlugin } from './status-plugin';
import { IKilnPipeline } from './tokens';
import { PipelineTracker } from './tracker';

const pipelinePlugin: JupyterFrontEndPlugin<IKilnPipeline> = {
  id: 'kiln-jupyterlab:pipeline',
  description: "The current notebook's Kiln pipeline, kept current by `kiln show`.",
  autoStart: true,
  requires: [INotebookTracker],
  provides: IKilnPipeline,
  activate: (_app: JupyterFrontEnd, notebooks: INotebookTracker) => new PipelineTracker(notebooks)
};

export { IKilnPipeline } from './tokens';

export default [pipelinePlugin, rolesPlugin, badgesPlugin, pipelinePanelPlugin, componentizePlugin, statusPlugin, experimentsPlugin, deploymentsPlugin];
