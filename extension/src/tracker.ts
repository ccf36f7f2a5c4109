/**
 * The pipeline of the notebook in front of the user, kept current: after each edit or role
 * change (debounced), `kiln show` on the editor's content — first the syntactic analysis,
 * which answers in well under a second, then the compiler's types, which may take a build.
 * One request of each kind in flight; an edit during one asks again when it ends.
 */
import { Notification } from '@jupyterlab/apputils';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { ISignal, Signal } from '@lumino/signaling';

import { Analysis, carryTypes } from './analysis';
import { requestKiln } from './request';
import { IKilnPipeline, IPipelineState } from './tokens';

export const KERNEL_NAME = 'kiln';
const SYNTAX_DELAY_MS = 250;
const TYPES_DELAY_MS = 1500;
const COMM_TIMEOUT_MS = 5000;

interface ShowReply {
  ok: boolean;
  analysis: Analysis;
}

class Lane {
  timer: number | null = null;
  inFlight = false;
  again = false;
}

export class PipelineTracker implements IKilnPipeline {
  private _current: IPipelineState | null = null;
  private readonly _changed = new Signal<IKilnPipeline, IPipelineState | null>(this);
  private watched: NotebookPanel | null = null;
  private editedAt = performance.now();
  private readonly syntax = new Lane();
  private readonly types = new Lane();
  private lastError: string | null = null;
  private receiver: object = {};

  constructor(notebooks: INotebookTracker) {
    notebooks.currentChanged.connect(() => this.watch(notebooks.currentWidget), this);
    this.watch(notebooks.currentWidget);
  }

  get current(): IPipelineState | null {
    return this._current;
  }

  get changed(): ISignal<IKilnPipeline, IPipelineState | null> {
    return this._changed;
  }

  refresh(): void {
    this.edited();
  }

  isKilnNotebook(panel: NotebookPanel | null): boolean {
    if (!panel) {
      return false;
    }
    const running = panel.sessionContext.session?.kernel?.name;
    if (running) {
      return running === KERNEL_NAME;
    }
    const spec = panel.model?.getMetadata('kernelspec') as { name?: string } | undefined;
    return spec?.name === KERNEL_NAME || panel.sessionContext.kernelPreference.name === KERNEL_NAME;
  }

  async kernelCells(panel: NotebookPanel): Promise<unknown | null> {
    const kernel = panel.sessionContext.session?.kernel;
    if (!kernel || kernel.name !== KERNEL_NAME || !kernel.handleComms) {
      return null;
    }
    const comm = kernel.createComm('kiln');
    // A kernel that is busy or gone must not hold the caller: whatever has not answered
    // within the timeout counts as no records.
    let timer = 0;
    const timeout = new Promise<null>(resolve => {
      timer = window.setTimeout(() => resolve(null), COMM_TIMEOUT_MS);
    });
    const answer = new Promise<unknown | null>(resolve => {
      comm.onMsg = msg => {
        const data = msg.content.data as { event?: string; cells?: unknown };
        if (data.event === 'ready') {
          comm.send({ request: 'cells' });
        } else if (data.cells !== undefined) {
          resolve({ cells: data.cells });
        }
      };
      comm.onClose = () => resolve(null);
    });
    try {
      comm.open({});
      return await Promise.race([answer, timeout]);
    } catch {
      return null;
    } finally {
      window.clearTimeout(timer);
      if (!comm.isDisposed) {
        comm.close();
      }
    }
  }

  private watch(panel: NotebookPanel | null): void {
    if (this.watched === panel) {
      return;
    }
    // Connections to the notebook being left go with their receiver.
    Signal.disconnectReceiver(this.receiver);
    this.receiver = {};
    const receiver = this.receiver;
    this.watched = panel;
    this._current = null;
    this._changed.emit(null);
    if (!panel) {
      return;
    }
    void panel.context.ready.then(() => {
      if (this.watched !== panel || !panel.model) {
        return;
      }
      const model = panel.model;
      const edited = () => this.edited();
      model.contentChanged.connect(edited, receiver);
      const watchCells = () => {
        for (let i = 0; i < model.cells.length; i++) {
          model.cells.get(i).metadataChanged.connect(edited, receiver);
        }
      };
      model.cells.changed.connect(watchCells, receiver);
      watchCells();
      panel.sessionContext.kernelChanged.connect(edited, receiver);
      this.edited();
    });
  }

  private edited(): void {
    this.editedAt = performance.now();
    this.schedule(this.syntax, SYNTAX_DELAY_MS, false);
    this.schedule(this.types, TYPES_DELAY_MS, true);
  }

  private schedule(lane: Lane, delay: number, types: boolean): void {
    if (lane.inFlight) {
      lane.again = true;
      return;
    }
    if (lane.timer !== null) {
      window.clearTimeout(lane.timer);
    }
    lane.timer = window.setTimeout(() => {
      lane.timer = null;
      void this.ask(lane, types);
    }, delay);
  }

  private async ask(lane: Lane, types: boolean): Promise<void> {
    const panel = this.watched;
    if (!panel?.model) {
      return;
    }
    lane.inFlight = true;
    const editedAt = this.editedAt;
    try {
      const body: Record<string, unknown> = { path: panel.context.path, content: panel.model.toJSON(), types };
      if (types) {
        const cells = await this.kernelCells(panel);
        if (cells) {
          body.kernel_cells = cells;
        }
      }
      const reply = await requestKiln<ShowReply>('show', { method: 'POST', body: JSON.stringify(body) });
      if (this.watched !== panel) {
        return;
      }
      // A typed answer never replaces a newer syntactic one for later content.
      const current = this._current;
      const stale =
        current !== null &&
        current.error === null &&
        (current.editedAt > editedAt || (current.editedAt === editedAt && current.typed && !types));
      if (!stale) {
        this.lastError = null;
        const analysis = carryTypes(current?.analysis ?? null, reply.analysis);
        this.publish({ notebook: panel, analysis, typed: types, editedAt, answeredAt: performance.now(), error: null });
      }
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (this.watched === panel) {
        const last = this._current;
        this.publish({
          notebook: panel,
          analysis: last?.analysis ?? null,
          typed: last?.typed ?? false,
          editedAt,
          answeredAt: performance.now(),
          error: message
        });
      }
      if (message !== this.lastError) {
        this.lastError = message;
        Notification.error(`Kiln could not read ${panel.context.path}: ${message}`, { autoClose: 8000 });
      }
    } finally {
      lane.inFlight = false;
      if (lane.again) {
        lane.again = false;
        this.schedule(lane, types ? TYPES_DELAY_MS : SYNTAX_DELAY_MS, types);
      }
    }
  }

  private publish(state: IPipelineState): void {
    this._current = state;
    this._changed.emit(state);
  }
}
