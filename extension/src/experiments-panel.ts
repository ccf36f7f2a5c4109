/**
 * "Experiments" (left panel, `kiln:open-experiments`): the runs of one experiment as a
 * table, live. By default the experiment the current notebook last logged to (its runs carry
 * the notebook's path as a tag), else the newest. Filter in the store's language (errors
 * shown under the field, with a caret at the column the store names), sort any column,
 * choose the columns (kept in the settings), check runs and compare them
 * (`kiln:compare-runs`). The active run's details: its tags and artifacts, lineage, rename,
 * tag, and back to the cell that started it.
 */
import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, InputDialog, Notification } from '@jupyterlab/apputils';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { LabIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { openComparison } from './compare-view';
import { element } from './dom';
import {
  CELL_TAG,
  Column,
  Experiment,
  NOTEBOOK_TAG,
  RunView,
  apiPath,
  caretLine,
  columnId,
  columnsOf,
  defaultExperiment,
  filterProblem,
  formatNumber,
  mergeRuns,
  tagOf,
  visibleColumns
} from './experiments';
import { reveal } from './places';
import { PUSH_TO_PRODUCTION } from './push-dialog';
import { KilnError, downloadKiln } from './request';
import { CATEGORY } from './roles-plugin';
import { RunsTable } from './runs-table';
import * as store from './store';
import { IKilnStatus } from './tokens';

export const OPEN_EXPERIMENTS = 'kiln:open-experiments';
export const COMPARE_RUNS = 'kiln:compare-runs';
export const REFRESH_RUNS = 'kiln:refresh-runs';
export const RENAME_RUN = 'kiln:rename-run';
export const TAG_RUN = 'kiln:tag-run';
export const GO_TO_RUN_CELL = 'kiln:go-to-run-cell';
export const SHOW_RUN_LINEAGE = 'kiln:show-run-lineage';

const POLL_MS = 1500;
const PLUGIN_ID = 'kiln-jupyterlab:experiments';

const experimentsIcon = new LabIcon({
  name: 'kiln:experiments',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><g class="jp-icon3" fill="#616161">' +
    '<rect x="3" y="14" width="3" height="7"/><rect x="8" y="9" width="3" height="12"/>' +
    '<rect x="13" y="11" width="3" height="10"/><rect x="18" y="4" width="3" height="17"/></g></svg>'
});

function button(label: string, aria: string, onClick: () => void): HTMLButtonElement {
  const node = element('button', 'jp-mod-styled kiln-Button', label);
  node.setAttribute('aria-label', aria);
  node.title = aria;
  node.addEventListener('click', onClick);
  return node;
}

function reason(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export class ExperimentsPanel extends Widget {
  readonly table = new RunsTable();
  private readonly picker = element('select', 'jp-mod-styled kiln-ExperimentPicker');
  private readonly filter = element('input', 'jp-mod-styled kiln-Filter');
  private readonly filterError = element('pre', 'kiln-FilterError');
  private readonly columnsBox = element('details', 'kiln-Columns');
  private readonly compare = button('Compare', 'Compare the checked runs', () => void this.app.commands.execute(COMPARE_RUNS));
  private readonly message = element('p', 'kiln-ExperimentsMessage');
  private readonly details = element('section', 'kiln-RunDetails');
  private experimentsList: Experiment[] = [];
  private experiment: string | null = null;
  private pickedByUser = false;
  private runs: RunView[] = [];
  private allColumns: Column[] = [];
  private cursor = 0;
  private active: string | null = null;
  private lineageOf: string | null = null;
  private timer = 0;
  private polling = false;
  private generation = 0;
  /** The filter of the answer the table shows: what polls ask with, not the text being typed. */
  private appliedFilter = '';
  /** Bumped by each `start()`: an older one that answers late changes nothing. */
  private starting = 0;
  /** Whether the table holds an answer for the experiment shown: polls wait for one. */
  private loaded = false;
  /** The last error toasted: a poll that fails the same way again does not toast again. */
  private lastFailure = '';

  constructor(
    private readonly app: JupyterFrontEnd,
    private readonly notebooks: INotebookTracker,
    private readonly settings: ISettingRegistry.ISettings | null
  ) {
    super();
    this.id = 'kiln-experiments';
    this.addClass('kiln-ExperimentsPanel');
    this.title.label = 'Experiments';
    this.title.caption = 'Kiln: runs of an experiment, live';
    this.title.icon = experimentsIcon;
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', 'Kiln experiments');

    const bar = element('div', 'kiln-ExperimentsBar');
    this.picker.setAttribute('aria-label', 'Experiment');
    this.picker.addEventListener('change', () => {
      this.pickedByUser = true;
      void this.load(this.picker.value);
    });
    bar.append(this.picker, button('⟳', 'Refresh the runs', () => void this.app.commands.execute(REFRESH_RUNS)));
    this.filter.placeholder = "metrics.acc > 0.9 and params.lr = '0.01'";
    this.filter.setAttribute('aria-label', 'Filter runs');
    this.filter.addEventListener('keydown', event => {
      if (event.key === 'Enter') {
        void this.reload();
      }
    });
    this.filterError.setAttribute('role', 'alert');
    this.filterError.hidden = true;
    this.columnsBox.append(element('summary', 'kiln-ColumnsSummary', 'Columns'));
    this.compare.disabled = true;
    const actions = element('div', 'kiln-ExperimentsActions');
    actions.append(this.columnsBox, this.compare);
    this.message.setAttribute('role', 'status');
    this.details.setAttribute('aria-label', 'Active run');
    this.node.append(bar, this.filter, this.filterError, actions, this.message, this.table.node, this.details);

    this.table.selectionChanged.connect((_, ids) => {
      this.compare.disabled = ids.length === 0;
      this.compare.textContent = ids.length > 0 ? `Compare (${ids.length})` : 'Compare';
    });
    this.table.activated.connect((_, run) => {
      this.active = run.id;
      this.lineageOf = null;
      this.table.setActive(run.id);
      this.renderDetails();
    });
    settings?.changed.connect(() => this.relayout());
    notebooks.currentChanged.connect(() => {
      if (!this.pickedByUser && this.isVisible) {
        void this.start();
      }
    });
  }

  get selected(): RunView[] {
    const ids = new Set(this.table.selection);
    return this.runs.filter(r => ids.has(r.id));
  }

  runById(id: string): RunView | null {
    return this.runs.find(r => r.id === id) ?? null;
  }

  get activeRun(): RunView | null {
    return this.active ? this.runById(this.active) : null;
  }

  protected onAfterShow(): void {
    void this.start();
    this.poll();
  }

  protected onAfterHide(): void {
    window.clearTimeout(this.timer);
    this.timer = 0;
  }

  /** The experiments, and the one to show: the current notebook's last, else the newest. */
  async start(): Promise<void> {
    const starting = ++this.starting;
    let experiments: Experiment[];
    try {
      experiments = await store.experiments();
    } catch (error) {
      if (starting === this.starting) {
        this.fail(`the store does not answer: ${readReason(error)}`);
      }
      return;
    }
    if (starting !== this.starting) {
      return;
    }
    this.experimentsList = experiments;
    this.picker.replaceChildren(...this.experimentsList.map(e => new Option(e.name, e.name)));
    if (this.experimentsList.length === 0) {
      this.say('No experiment yet: a cell that calls kiln::run("…") makes one.');
      return;
    }
    let chosen = this.experiment;
    if (!this.pickedByUser || !chosen) {
      const last = await this.lastRunOfNotebook(this.notebooks.currentWidget);
      // A later start, or the user's own pick, made while this one waited, wins.
      if (starting !== this.starting || (this.pickedByUser && this.experiment)) {
        return;
      }
      chosen = defaultExperiment(this.experimentsList, last)?.name ?? null;
    }
    if (chosen) {
      this.picker.value = chosen;
      if (chosen !== this.experiment) {
        await this.load(chosen);
      }
    }
  }

  private async lastRunOfNotebook(panel: NotebookPanel | null): Promise<RunView | null> {
    if (!panel) {
      return null;
    }
    try {
      const candidates = await store.runsOfNotebook(panel.context.path, NOTEBOOK_TAG);
      return candidates.find(run => apiPath(tagOf(run, NOTEBOOK_TAG) ?? '', rootsOf()) === panel.context.path) ?? null;
    } catch {
      return null;
    }
  }

  /** The experiments listed again (a new one may have started), then the runs. */
  async refresh(): Promise<void> {
    const before = this.experiment;
    await this.start();
    if (this.experiment === before) {
      await this.reload();
    }
  }

  async load(experiment: string): Promise<void> {
    this.experiment = experiment;
    this.active = null;
    this.lineageOf = null;
    // Nothing of the previous experiment stays on screen or in the poll's cursor, should
    // this one's runs not come.
    this.runs = [];
    this.cursor = 0;
    this.loaded = false;
    this.relayout();
    await this.reload();
  }

  /** Every run of the experiment that matches the filter, afresh. */
  async reload(): Promise<void> {
    if (!this.experiment) {
      await this.start();
      return;
    }
    const generation = ++this.generation;
    this.say('loading…');
    const filter = this.filter.value.trim();
    try {
      const page = await store.allRuns({ experiment: this.experiment, filter });
      if (generation !== this.generation) {
        return;
      }
      this.showFilterProblem(null);
      this.appliedFilter = filter;
      this.loaded = true;
      this.lastFailure = '';
      this.runs = page.runs;
      this.cursor = page.cursor;
      this.relayout();
      this.say(`${this.runs.length} run${this.runs.length === 1 ? '' : 's'} in ${this.experiment}`);
    } catch (error) {
      if (generation !== this.generation) {
        return;
      }
      if (error instanceof KilnError && error.status === 400 && /^filter: /.test(error.message)) {
        this.showFilterProblem(error.message);
        this.say('The filter is not valid; the table shows the last answer.');
        return;
      }
      this.fail(`could not read the runs of ${this.experiment}: ${readReason(error)}`);
    }
  }

  private showFilterProblem(message: string | null): void {
    if (message === null) {
      this.filterError.hidden = true;
      this.filter.removeAttribute('aria-invalid');
      return;
    }
    const problem = filterProblem(message);
    const caret = caretLine(this.filter.value.trim(), problem);
    this.filterError.textContent = caret ? `${this.filter.value.trim()}\n${caret} ${problem.message}` : problem.message;
    this.filterError.hidden = false;
    this.filter.setAttribute('aria-invalid', 'true');
  }

  /**
   * Runs that changed since the last answer, merged in place; every `POLL_MS` while shown.
   * With a filter, a changed run the filter no longer matches leaves the table (a run that
   * finishes leaves `status = 'RUNNING'`). Without an experiment yet (the store was down,
   * or no cell has logged), it looks for one again.
   */
  private poll(): void {
    window.clearTimeout(this.timer);
    this.timer = window.setTimeout(async () => {
      if (!this.polling) {
        this.polling = true;
        try {
          if (!this.experiment) {
            await this.start();
          } else if (!this.filterError.hidden) {
            // The user's filter does not read: nothing to ask until it is fixed.
          } else if (!this.loaded) {
            await this.reload();
          } else {
            await this.pollChanges(this.experiment);
          }
        } finally {
          this.polling = false;
        }
      }
      if (this.isVisible) {
        this.poll();
      }
    }, POLL_MS);
  }

  private async pollChanges(experiment: string): Promise<void> {
    const generation = this.generation;
    const filter = this.appliedFilter;
    try {
      const changed = await store.allRuns({ experiment, filter: '', changedSince: this.cursor });
      let matching = changed.runs;
      if (filter && changed.runs.length > 0) {
        matching = (await store.allRuns({ experiment, filter, changedSince: this.cursor })).runs;
      }
      if (generation !== this.generation) {
        return;
      }
      const paused = this.message.classList.contains('kiln-mod-error');
      this.cursor = changed.cursor;
      if (changed.runs.length > 0) {
        const still = new Set(matching.map(r => r.id));
        const gone = new Set(changed.runs.filter(r => !still.has(r.id)).map(r => r.id));
        this.runs = mergeRuns(
          this.runs.filter(r => !gone.has(r.id)),
          matching
        ).runs;
        this.relayout();
      }
      if (paused || changed.runs.length > 0) {
        this.say(`${this.runs.length} run${this.runs.length === 1 ? '' : 's'} in ${experiment}`);
      }
    } catch (error) {
      if (generation === this.generation) {
        this.say(`live updates paused: ${readReason(error)}`, true);
      }
    }
  }

  /** The table with the columns chosen in the settings, and the column chooser. */
  private relayout(): void {
    this.allColumns = columnsOf(this.runs);
    const chosen = (this.settings?.get('columns').composite as string[] | null) ?? null;
    const shown = visibleColumns(this.allColumns, chosen);
    this.table.update(this.runs, shown);
    const shownIds = new Set(shown.map(columnId));
    const boxes = this.allColumns.map(column => {
      const label = element('label', 'kiln-ColumnChoice');
      const box = element('input', '');
      box.type = 'checkbox';
      box.checked = shownIds.has(columnId(column));
      box.disabled = column.kind === 'attribute' && column.key === 'name';
      box.dataset.column = columnId(column);
      box.addEventListener('change', () => void this.chooseColumns());
      label.append(box, document.createTextNode(` ${columnId(column)}`));
      return label;
    });
    const summary = this.columnsBox.querySelector('summary')!;
    this.columnsBox.replaceChildren(summary, ...boxes);
    this.renderDetails();
  }

  private async chooseColumns(): Promise<void> {
    const ids = [...this.columnsBox.querySelectorAll<HTMLInputElement>('input[data-column]')].filter(b => b.checked).map(b => b.dataset.column!);
    if (this.settings) {
      try {
        await this.settings.set('columns', ids);
      } catch (error) {
        Notification.error(`Kiln: the column choice was not saved: ${reason(error)}`);
      }
    } else {
      this.table.update(this.runs, visibleColumns(this.allColumns, ids));
    }
  }

  private renderDetails(): void {
    const run = this.activeRun;
    if (!run) {
      this.details.replaceChildren();
      if (this.active) {
        this.details.append(element('p', 'kiln-Empty', 'The active run is no longer in this list (deleted, or the filter leaves it out).'));
      }
      return;
    }
    const title = element('h3', 'kiln-RunTitle', run.name);
    const facts = element('p', 'kiln-RunFacts', `${run.status.toLowerCase()} · ${run.source} · ${run.id}`);
    const actions = element('div', 'kiln-RunActions');
    actions.append(
      button('Rename', `Rename run ${run.name}`, () => void this.app.commands.execute(RENAME_RUN, { run: run.id })),
      button('Tag', `Tag run ${run.name}`, () => void this.app.commands.execute(TAG_RUN, { run: run.id }))
    );
    if (tagOf(run, CELL_TAG)) {
      actions.append(button('Go to cell', `Go to the cell that started ${run.name}`, () => void this.app.commands.execute(GO_TO_RUN_CELL, { run: run.id })));
    }
    if ((run.models ?? []).length > 0) {
      actions.append(button('Lineage', `Show the lineage of ${run.name}'s model`, () => void this.app.commands.execute(SHOW_RUN_LINEAGE, { run: run.id })));
      // The model version this run registered, served from here as from the notebook's toolbar.
      const model = run.models![run.models!.length - 1];
      actions.append(
        button('Push to production', `Push ${model.name} v${model.version} to production`, () => void this.app.commands.execute(PUSH_TO_PRODUCTION, { handle: model.name, version: model.version }))
      );
    }
    const list = (label: string, items: HTMLElement[]) => {
      const section = element('div', 'kiln-RunList');
      section.append(element('h4', '', label), ...(items.length > 0 ? items : [element('p', 'kiln-Empty', 'none')]));
      return section;
    };
    const metrics = run.metrics.map(m => element('div', 'kiln-RunItem', `${m.key} = ${formatNumber(m.value)} (step ${m.step})`));
    const tags = run.tags.map(t => element('div', 'kiln-RunItem', `${t.key} = ${t.value}`));
    const artifacts = run.artifacts.map(a => {
      const row = element('div', 'kiln-RunItem');
      row.append(
        button(`⤓ ${a.path}`, `Download ${a.path} (${a.size} bytes)`, () => void downloadArtifact(a.sha256, a.path)),
        document.createTextNode(` ${(a.size / 1024).toFixed(1)} KiB`)
      );
      return row;
    });
    this.details.replaceChildren(title, facts, actions, list('Metrics', metrics), list('Tags', tags), list('Artifacts', artifacts));
    if (this.lineageOf === run.id) {
      this.details.append(this.lineageNode);
    }
  }

  private lineageNode = element('div', 'kiln-Lineage');

  async showLineage(runId: string): Promise<void> {
    const run = this.runById(runId);
    const model = run?.models?.[run.models.length - 1];
    if (!run || !model) {
      Notification.warning(`Kiln: run ${runId} registered no model version, so it has no lineage to show.`);
      return;
    }
    this.lineageNode = element('div', 'kiln-Lineage');
    this.lineageNode.setAttribute('aria-label', `Lineage of ${model.name}@${model.version}`);
    try {
      const found = await store.lineage(model.name, model.version);
      const lines = [
        `model ${found.model_version.name}@${found.model_version.version}`,
        ...found.datasets_read.map(d => `read dataset ${d.name} ${d.id} (${d.fingerprint.slice(0, 12)})`),
        ...found.datasets_produced.map(d => `produced dataset ${d.name} ${d.id} (${d.fingerprint.slice(0, 12)})`),
        ...found.code_packages.map(p => `code ${p.handle} ${p.role}: ${p.image}@${p.digest.slice(0, 19)}`)
      ];
      this.lineageNode.append(element('h4', '', 'Lineage'), ...lines.map(line => element('div', 'kiln-RunItem', line)));
    } catch (error) {
      this.lineageNode.append(element('p', 'kiln-mod-error', `lineage: ${reason(error)}`));
    }
    this.lineageOf = runId;
    this.active = runId;
    this.table.setActive(runId);
    this.renderDetails();
  }

  say(text: string, error = false): void {
    this.message.textContent = text;
    this.message.classList.toggle('kiln-mod-error', error);
  }

  /** An error in the panel and a toast; the same error again (a poll retrying) only the panel. */
  private fail(text: string): void {
    this.say(text, true);
    if (text !== this.lastFailure) {
      Notification.error(`Kiln: ${text}`, { autoClose: 8000 });
    }
    this.lastFailure = text;
  }
}

/** The server's root, as the status item last heard it: absolute paths in tags are under it. */
let status: IKilnStatus | null = null;
function rootsOf(): string[] {
  const current = status?.current;
  return typeof current === 'object' ? (current.root ?? []) : [];
}

async function downloadArtifact(sha256: string, path: string): Promise<void> {
  try {
    const blob = await downloadKiln(`api/v1/artifacts/${sha256}`);
    const link = document.createElement('a');
    link.href = URL.createObjectURL(blob);
    link.download = path.split('/').pop() || sha256;
    link.click();
    window.setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  } catch (error) {
    Notification.error(`Kiln: could not download ${path}: ${reason(error)}`);
  }
}

/** Opens the run's notebook and takes the user to the cell that started it. */
async function goToCell(app: JupyterFrontEnd, run: RunView): Promise<void> {
  const cellId = tagOf(run, CELL_TAG);
  const path = apiPath(tagOf(run, NOTEBOOK_TAG) ?? '', rootsOf());
  if (!cellId || !path) {
    Notification.warning(`Kiln: run ${run.name} does not say which notebook cell started it (it did not start in a notebook under this server).`);
    return;
  }
  let panel: NotebookPanel;
  try {
    panel = (await app.commands.execute('docmanager:open', { path })) as NotebookPanel;
    await panel.context.ready;
  } catch (error) {
    Notification.error(`Kiln: could not open ${path}: ${reason(error)}`);
    return;
  }
  const index = panel.content.widgets.findIndex(cell => cell.model.id === cellId);
  if (index < 0) {
    Notification.warning(`Kiln: ${path} no longer has the cell that started run ${run.name} (id ${cellId}).`);
    return;
  }
  app.shell.activateById(panel.id);
  await reveal(panel, index, 0);
}

export const experimentsPlugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'The Experiments panel: runs of an experiment, live, compared beside the notebook.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ISettingRegistry, ILayoutRestorer, ICommandPalette, IKilnStatus],
  activate: async (
    app: JupyterFrontEnd,
    notebooks: INotebookTracker,
    registry: ISettingRegistry | null,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null,
    kilnStatus: IKilnStatus | null
  ) => {
    status = kilnStatus;
    let settings: ISettingRegistry.ISettings | null = null;
    try {
      settings = registry ? await registry.load(PLUGIN_ID) : null;
    } catch (error) {
      console.warn('kiln: the Experiments settings could not be loaded; column choices will not be kept', error);
    }
    const panel = new ExperimentsPanel(app, notebooks, settings);
    app.shell.add(panel, 'left', { rank: 720 });
    restorer?.add(panel, 'kiln-experiments');

    const runArg = (args: { run?: unknown }) => {
      const id = typeof args.run === 'string' ? args.run : panel.activeRun?.id;
      return id ? panel.runById(id) : null;
    };
    app.commands.addCommand(OPEN_EXPERIMENTS, {
      label: 'Open the Experiments Panel',
      caption: 'Runs of an experiment, live, beside the notebook',
      execute: () => app.shell.activateById(panel.id)
    });
    app.commands.addCommand(REFRESH_RUNS, {
      label: 'Refresh the Runs',
      execute: () => panel.refresh()
    });
    app.commands.addCommand(COMPARE_RUNS, {
      label: 'Compare the Checked Runs',
      isEnabled: () => panel.table.selection.length > 0,
      execute: () => {
        const runs = panel.selected;
        if (runs.length === 0) {
          Notification.warning('Kiln: check at least one run to compare.');
          return;
        }
        openComparison(app, runs);
      }
    });
    app.commands.addCommand(RENAME_RUN, {
      label: 'Rename the Run',
      execute: async args => {
        const run = runArg(args);
        if (!run) {
          return;
        }
        const answer = await InputDialog.getText({ title: `Rename run ${run.name}`, text: run.name, label: 'New name' });
        if (!answer.button.accept || !answer.value || answer.value === run.name) {
          return;
        }
        try {
          await store.rename(run.id, answer.value);
          await panel.reload();
        } catch (error) {
          Notification.error(`Kiln: could not rename run ${run.name}: ${writeReason(error)}`);
        }
      }
    });
    app.commands.addCommand(TAG_RUN, {
      label: 'Tag the Run',
      execute: async args => {
        const run = runArg(args);
        if (!run) {
          return;
        }
        const answer = await InputDialog.getText({ title: `Tag run ${run.name}`, label: 'key=value', placeholder: 'stage=candidate' });
        if (!answer.button.accept || !answer.value) {
          return;
        }
        const at = answer.value.indexOf('=');
        if (at <= 0) {
          Notification.error(`Kiln: '${answer.value}' is not key=value`);
          return;
        }
        try {
          await store.setTag(run.id, answer.value.slice(0, at).trim(), answer.value.slice(at + 1).trim());
          await panel.reload();
        } catch (error) {
          Notification.error(`Kiln: could not tag run ${run.name}: ${writeReason(error)}`);
        }
      }
    });
    app.commands.addCommand(GO_TO_RUN_CELL, {
      label: 'Go to the Cell That Started the Run',
      execute: async args => {
        const run = runArg(args);
        if (run) {
          await goToCell(app, run);
        }
      }
    });
    app.commands.addCommand(SHOW_RUN_LINEAGE, {
      label: "Show the Run's Lineage",
      execute: async args => {
        const run = runArg(args);
        if (run) {
          await panel.showLineage(run.id);
        }
      }
    });
    for (const command of [OPEN_EXPERIMENTS, REFRESH_RUNS, COMPARE_RUNS]) {
      palette?.addItem({ command, category: CATEGORY });
    }
  }
};

/** A refused read says why: a token the store does not take is named as such. */
function readReason(error: unknown): string {
  if (error instanceof KilnError && (error.status === 401 || error.status === 403)) {
    return `the store refused to answer (HTTP ${error.status}): it needs a token this Jupyter server does not have (KILN_TOKEN, c.Kiln.store_token). ${error.message}`;
  }
  if (error instanceof KilnError && error.status === 404) {
    return `not found (deleted, or another store): ${error.message}`;
  }
  return reason(error);
}

/** A refused write says why; a store that takes no writes from this server says so plainly. */
function writeReason(error: unknown): string {
  if (error instanceof KilnError && (error.status === 401 || error.status === 403)) {
    return `the store refused the write (HTTP ${error.status}): this Jupyter server has no token that may write (KILN_TOKEN, c.Kiln.store_token). ${error.message}`;
  }
  return reason(error);
}
