/**
 * "Componentize notebook": saves the notebook, asks for the handle, shows the pipeline,
 * then runs `kiln componentize` through the server extension with one live row per phase
 * and component, a Cancel button that stops the build, and at the end the images (refs,
 * digests, sizes) and the code packages registered. Every failure is a notification with
 * the reason, and a link to the cell when there is one.
 */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { Dialog, ICommandPalette, MainAreaWidget, Notification, showDialog } from '@jupyterlab/apputils';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { Widget } from '@lumino/widgets';

import { Diagnostic } from './analysis';
import { ImageSummary, KilnEvent, Row, foldRows } from './events';
import { reveal } from './places';
import { KilnError, requestKiln, streamKiln } from './request';
import { defaultHandle } from './roles';
import { CATEGORY } from './roles-plugin';
import { Status } from './status';
import { IKilnPipeline, IKilnStatus } from './tokens';

export const COMPONENTIZE = 'kiln:componentize';

function cellText(node: HTMLElement, text: string): HTMLElement {
  node.textContent = text;
  return node;
}

function megabytes(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

/** The build's view: its rows as they change, then what it made. */
export class ComponentizeView extends Widget {
  private rows: Row[] = [];
  private readonly table = document.createElement('table');
  private readonly result = document.createElement('div');
  readonly cancel = document.createElement('button');
  private readonly state = document.createElement('p');

  constructor(
    readonly handle: string,
    private readonly abort: AbortController,
    steps: string
  ) {
    super();
    this.addClass('kiln-Componentize');
    const intro = document.createElement('p');
    intro.className = 'kiln-ComponentizeSteps';
    intro.textContent = steps;
    this.state.className = 'kiln-ComponentizeState';
    this.state.setAttribute('role', 'status');
    this.state.textContent = 'starting…';
    this.cancel.className = 'jp-mod-styled jp-mod-warn kiln-Cancel';
    this.cancel.textContent = 'Cancel';
    this.cancel.setAttribute('aria-label', `Cancel componentizing ${handle}`);
    this.cancel.addEventListener('click', () => this.abort.abort());
    this.table.className = 'kiln-Rows';
    this.table.setAttribute('aria-label', 'Componentize progress');
    this.result.className = 'kiln-Result';
    this.node.append(intro, this.state, this.cancel, this.table, this.result);
  }

  record(event: KilnEvent): void {
    this.rows = foldRows(this.rows, event);
    this.table.replaceChildren(
      ...this.rows.map(row => {
        const tr = document.createElement('tr');
        tr.dataset.kilnPhase = row.phase;
        tr.dataset.kilnComponent = row.component ?? '';
        tr.dataset.kilnState = row.state;
        const bar = document.createElement('progress');
        bar.max = 1;
        if (row.progress !== null) {
          bar.value = row.progress;
        }
        bar.setAttribute('aria-label', `${row.phase} ${row.component ?? ''} progress`);
        const td = () => document.createElement('td');
        const barCell = td();
        barCell.append(bar);
        tr.append(
          cellText(td(), row.phase),
          cellText(td(), row.component ?? 'all'),
          cellText(td(), row.state),
          barCell,
          cellText(td(), row.message),
          cellText(td(), `${row.seconds.toFixed(1)} s`)
        );
        return tr;
      })
    );
  }

  finished(text: string, images: ImageSummary[] | null): void {
    this.state.textContent = text;
    this.cancel.disabled = true;
    this.cancel.hidden = true;
    if (!images) {
      return;
    }
    const table = document.createElement('table');
    table.className = 'kiln-Images';
    table.setAttribute('aria-label', 'Images');
    const head = document.createElement('tr');
    for (const title of ['role', 'image', 'digest', 'size', 'code package']) {
      head.append(cellText(document.createElement('th'), title));
    }
    table.append(head);
    for (const image of images) {
      const tr = document.createElement('tr');
      tr.dataset.kilnRole = image.role;
      const td = () => document.createElement('td');
      tr.append(
        cellText(td(), image.role),
        cellText(td(), image.reference),
        cellText(td(), image.digest),
        cellText(td(), megabytes(image.size)),
        cellText(td(), image.code_package ?? '—')
      );
      table.append(tr);
    }
    this.result.replaceChildren(table);
  }
}

interface Target {
  handle: string;
  /** `HOST:PORT`; empty: the server extension's registry (KILN_REGISTRY). */
  registry: string;
}

function field(label: string, name: string, value: string, placeholder: string): [HTMLLabelElement, HTMLInputElement] {
  const input = document.createElement('input');
  input.className = 'jp-mod-styled';
  input.name = name;
  input.value = value;
  input.placeholder = placeholder;
  const wrapper = document.createElement('label');
  wrapper.className = 'kiln-Field';
  wrapper.append(cellText(document.createElement('span'), label), input);
  return [wrapper, input];
}

/** The dialog's form: the handle (names the images and the model) and the registry. */
export class TargetForm extends Widget implements Dialog.IBodyWidget<Target> {
  private readonly handle: HTMLInputElement;
  private readonly registry: HTMLInputElement;

  constructor(handle: string, registry: string) {
    super();
    this.addClass('kiln-TargetForm');
    const [handleRow, handleInput] = field('Handle (names the images and the model)', 'handle', handle, 'iris');
    const [registryRow, registryInput] = field('Push to registry (HOST:PORT)', 'registry', registry, 'the server\'s registry');
    this.handle = handleInput;
    this.registry = registryInput;
    this.node.append(handleRow, registryRow);
  }

  getValue(): Target {
    return { handle: this.handle.value.trim(), registry: this.registry.value.trim() };
  }
}

/** The registry the server extension pushes to by default: as the status item last heard
 * it, else asked now. */
async function defaultRegistry(status: IKilnStatus | null): Promise<string> {
  const known = status?.current;
  if (known !== undefined && typeof known !== 'string') {
    return known.registry.host ?? '';
  }
  try {
    const asked = await requestKiln<Status>('status');
    return asked.registry.host ?? '';
  } catch {
    return '';
  }
}

function notifyProblems(panel: NotebookPanel, problems: Diagnostic[]): void {
  for (const problem of problems.slice(0, 5)) {
    const where = problem.cell === null ? 'notebook' : `cell ${problem.cell}${problem.line > 0 ? `, line ${problem.line}` : ''}`;
    const cell = problem.cell;
    Notification.error(`${where}: ${problem.message}`, {
      autoClose: false,
      actions: cell === null ? [] : [{ label: 'Show cell', callback: () => void reveal(panel, cell, problem.line) }]
    });
  }
}

async function componentize(app: JupyterFrontEnd, panel: NotebookPanel, pipeline: IKilnPipeline, status: IKilnStatus | null): Promise<void> {
  await panel.context.save();
  const asked = await showDialog({
    title: 'Componentize notebook',
    body: new TargetForm(defaultHandle(panel.context.path), await defaultRegistry(status)),
    buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Componentize' })],
    focusNodeSelector: 'input[name="handle"]'
  });
  if (!asked.button.accept || asked.value === null) {
    return;
  }
  const { handle, registry } = asked.value;
  const analysis = pipeline.current?.notebook === panel ? pipeline.current.analysis : null;
  const steps = analysis
    ? `${panel.context.path}: data (cells ${(analysis.steps.data ?? []).join(', ')}) → train (cells ${(analysis.steps.train ?? []).join(', ')}) → infer (cells ${(analysis.steps.infer ?? []).join(', ')}); ${analysis.flows.length} value(s) cross the steps.`
    : panel.context.path;
  const abort = new AbortController();
  const view = new ComponentizeView(handle, abort, steps);
  const widget = new MainAreaWidget({ content: view });
  widget.id = `kiln-componentize-${handle}-${Date.now()}`;
  widget.title.label = `Componentize ${handle}`;
  widget.title.closable = true;
  widget.disposed.connect(() => abort.abort());
  app.shell.add(widget, 'main', { mode: 'split-right' });

  const body: Record<string, unknown> = { path: panel.context.path, handle };
  if (registry) {
    body.registry = registry;
  }
  const cells = await pipeline.kernelCells(panel);
  if (cells) {
    body.kernel_cells = cells;
  }
  let images: ImageSummary[] | null = null;
  let failure: string | null = null;
  try {
    await streamKiln(
      'componentize',
      body,
      event => {
        view.record(event);
        if (event.event === 'result') {
          images = event.images;
        } else if (event.event === 'problems') {
          notifyProblems(panel, event.diagnostics);
        } else if (event.event === 'error') {
          failure = event.message;
        } else if (event.event === 'exit' && event.code !== 0 && failure === null) {
          failure = event.message || `kiln componentize exited ${event.code}`;
        }
      },
      abort.signal
    );
  } catch (error) {
    if (abort.signal.aborted) {
      view.finished('cancelled: the build was stopped', null);
      Notification.info(`Componentizing ${handle} was cancelled.`, { autoClose: 5000 });
      return;
    }
    failure = error instanceof KilnError ? error.message : String(error);
  }
  if (failure !== null) {
    view.finished(`failed: ${failure}`, null);
    Notification.error(`Componentize ${handle} failed: ${failure}`, { autoClose: false });
  } else if (images) {
    view.finished(`done: ${(images as ImageSummary[]).length} images`, images);
    Notification.success(`${handle}: three images built${(images as ImageSummary[]).some(i => i.code_package) ? ' and registered' : ''}.`, { autoClose: 5000 });
  } else {
    view.finished('ended without a result', null);
    Notification.error(`Componentize ${handle} ended without a result.`, { autoClose: false });
  }
}

export const componentizePlugin: JupyterFrontEndPlugin<void> = {
  id: 'kiln-jupyterlab:componentize',
  description: 'The "Componentize notebook" toolbar button and command.',
  autoStart: true,
  requires: [INotebookTracker, IKilnPipeline],
  optional: [ICommandPalette, IKilnStatus],
  activate: (app: JupyterFrontEnd, notebooks: INotebookTracker, pipeline: IKilnPipeline, palette: ICommandPalette | null, status: IKilnStatus | null) => {
    app.commands.addCommand(COMPONENTIZE, {
      label: 'Componentize notebook',
      caption: 'Build the notebook\'s data, train and infer components as OCI images, push and register them',
      isVisible: () => pipeline.isKilnNotebook(notebooks.currentWidget),
      isEnabled: () => notebooks.currentWidget !== null,
      execute: async () => {
        const panel = notebooks.currentWidget;
        if (!panel) {
          Notification.warning('Open a notebook to componentize.');
          return;
        }
        try {
          await componentize(app, panel, pipeline, status);
        } catch (error) {
          Notification.error(`Componentize failed: ${error instanceof Error ? error.message : String(error)}`, { autoClose: false });
        }
      }
    });
    palette?.addItem({ command: COMPONENTIZE, category: CATEGORY });
    // The toolbar button asks `isVisible` when it is made, often before its notebook is the
    // current one or its kernel is known: ask it again whenever either changes.
    const changed = () => app.commands.notifyCommandChanged(COMPONENTIZE);
    notebooks.currentChanged.connect(changed);
    notebooks.widgetAdded.connect((_, panel) => {
      void panel.revealed.then(changed);
      panel.sessionContext.kernelChanged.connect(changed);
    });
  }
};
