/**
 * The runs table: a grid of one row a run, virtualised (only the rows in view exist in the
 * DOM), so a thousand runs scroll as smoothly as ten. Header buttons sort; a checkbox per row
 * selects for comparison; a click on a row makes it the active run.
 */
import { Signal } from '@lumino/signaling';

import { Column, RunView, cellText, columnId, sortRuns } from './experiments';

const ROW_HEIGHT = 26;
const OVERSCAN = 8;

export interface SortState {
  column: Column;
  descending: boolean;
}

export class RunsTable {
  readonly node = document.createElement('div');
  /** The ids of the checked runs changed. */
  readonly selectionChanged = new Signal<RunsTable, string[]>(this);
  /** A row was clicked (its run made active). */
  readonly activated = new Signal<RunsTable, RunView>(this);

  private readonly header = document.createElement('div');
  private readonly viewport = document.createElement('div');
  private readonly spacer = document.createElement('div');
  private readonly body = document.createElement('div');
  private runs: RunView[] = [];
  private sorted: RunView[] = [];
  private columns: Column[] = [];
  private sort: SortState | null = null;
  private readonly selected = new Set<string>();
  private activeId: string | null = null;
  private frame = 0;

  constructor() {
    this.node.className = 'kiln-RunsTable';
    this.node.setAttribute('role', 'grid');
    this.node.setAttribute('aria-label', 'Runs');
    this.header.className = 'kiln-RunsHeader';
    this.header.setAttribute('role', 'row');
    this.viewport.className = 'kiln-RunsViewport';
    this.spacer.className = 'kiln-RunsSpacer';
    this.body.className = 'kiln-RunsBody';
    this.body.setAttribute('role', 'rowgroup');
    this.spacer.append(this.body);
    this.viewport.append(this.spacer);
    this.node.append(this.header, this.viewport);
    this.viewport.addEventListener('scroll', () => this.schedule());
    new ResizeObserver(() => this.schedule()).observe(this.viewport);
  }

  get selection(): string[] {
    return this.runs.filter(r => this.selected.has(r.id)).map(r => r.id);
  }

  get shown(): RunView[] {
    return this.sorted;
  }

  get sortState(): SortState | null {
    return this.sort;
  }

  /** New runs or columns; the sort, the selection and the scroll position stay. */
  update(runs: RunView[], columns: Column[]): void {
    this.runs = runs;
    const known = new Set(runs.map(r => r.id));
    const before = this.selected.size;
    for (const id of [...this.selected]) {
      if (!known.has(id)) {
        this.selected.delete(id);
      }
    }
    const headerChanged = columns.map(columnId).join('\n') !== this.columns.map(columnId).join('\n');
    this.columns = columns;
    if (this.sort && !columns.some(c => columnId(c) === columnId(this.sort!.column))) {
      this.sort = null;
    }
    this.resort();
    if (headerChanged) {
      this.renderHeader();
    }
    this.render();
    if (this.selected.size !== before) {
      this.selectionChanged.emit(this.selection);
    }
  }

  sortBy(column: Column, descending?: boolean): void {
    const same = this.sort && columnId(this.sort.column) === columnId(column);
    // A first click sorts up, except the start time: newest first.
    this.sort = { column, descending: descending ?? (same ? !this.sort!.descending : column.kind === 'attribute' && column.key === 'start') };
    this.resort();
    this.renderHeader();
    this.render();
  }

  setActive(id: string | null): void {
    this.activeId = id;
    this.render();
  }

  setSelected(ids: string[]): void {
    this.selected.clear();
    ids.forEach(id => this.selected.add(id));
    this.render();
    this.selectionChanged.emit(this.selection);
  }

  private resort(): void {
    this.sorted = this.sort ? sortRuns(this.runs, this.sort.column, this.sort.descending, Date.now()) : this.runs.slice();
  }

  private schedule(): void {
    if (!this.frame) {
      this.frame = requestAnimationFrame(() => {
        this.frame = 0;
        this.render();
      });
    }
  }

  private renderHeader(): void {
    const cells: HTMLElement[] = [];
    const pick = document.createElement('span');
    pick.className = 'kiln-RunsCell kiln-RunsPick kiln-mod-sticky';
    pick.setAttribute('role', 'columnheader');
    pick.textContent = '';
    cells.push(pick);
    for (const [i, column] of this.columns.entries()) {
      const cell = document.createElement('span');
      cell.className = `kiln-RunsCell kiln-RunsCol-${column.kind}${i === 0 ? ' kiln-mod-sticky' : ''}`;
      cell.setAttribute('role', 'columnheader');
      const sorted = this.sort && columnId(this.sort.column) === columnId(column);
      cell.setAttribute('aria-sort', sorted ? (this.sort!.descending ? 'descending' : 'ascending') : 'none');
      const button = document.createElement('button');
      button.className = 'kiln-RunsSort';
      button.textContent = column.key + (sorted ? (this.sort!.descending ? ' ▾' : ' ▴') : '');
      button.title = `Sort by ${columnId(column)}`;
      button.setAttribute('aria-label', `Sort by ${columnId(column)}`);
      button.dataset.column = columnId(column);
      button.addEventListener('click', () => this.sortBy(column));
      cell.append(button);
      cells.push(cell);
    }
    this.header.replaceChildren(...cells);
  }

  private render(): void {
    const total = this.sorted.length;
    this.spacer.style.height = `${total * ROW_HEIGHT}px`;
    const top = this.viewport.scrollTop;
    const height = this.viewport.clientHeight || 400;
    const first = Math.max(0, Math.floor(top / ROW_HEIGHT) - OVERSCAN);
    const last = Math.min(total, Math.ceil((top + height) / ROW_HEIGHT) + OVERSCAN);
    this.body.style.transform = `translateY(${first * ROW_HEIGHT}px)`;
    const now = Date.now();
    const rows: HTMLElement[] = [];
    for (let i = first; i < last; i++) {
      rows.push(this.row(this.sorted[i], i, now));
    }
    // Rows are drawn afresh on every live change: the keyboard focus stays on its run.
    const focused = document.activeElement instanceof HTMLElement && this.body.contains(document.activeElement) ? document.activeElement.closest<HTMLElement>('.kiln-RunsRow') : null;
    const focusedId = focused?.dataset.runId;
    const focusedBox = focused !== null && document.activeElement instanceof HTMLInputElement;
    this.body.replaceChildren(...rows);
    if (focusedId) {
      const row = rows.find(r => r.dataset.runId === focusedId);
      (focusedBox ? row?.querySelector('input') : row)?.focus();
    }
    this.node.setAttribute('aria-rowcount', String(total + 1));
  }

  private row(run: RunView, index: number, now: number): HTMLElement {
    const row = document.createElement('div');
    row.className = `kiln-RunsRow${run.id === this.activeId ? ' kiln-mod-active' : ''}`;
    row.setAttribute('role', 'row');
    row.setAttribute('aria-rowindex', String(index + 2));
    row.dataset.runId = run.id;
    row.dataset.status = run.status;
    const pick = document.createElement('span');
    pick.className = 'kiln-RunsCell kiln-RunsPick kiln-mod-sticky';
    pick.setAttribute('role', 'gridcell');
    const box = document.createElement('input');
    box.type = 'checkbox';
    box.checked = this.selected.has(run.id);
    box.setAttribute('aria-label', `Select run ${run.name} to compare`);
    box.addEventListener('click', event => event.stopPropagation());
    box.addEventListener('change', () => {
      if (box.checked) {
        this.selected.add(run.id);
      } else {
        this.selected.delete(run.id);
      }
      this.selectionChanged.emit(this.selection);
    });
    pick.append(box);
    row.append(pick);
    for (const [i, column] of this.columns.entries()) {
      const cell = document.createElement('span');
      // The checkbox and the first column (the run's name) stay in view when the table
      // scrolls sideways through its params and metrics.
      cell.className = `kiln-RunsCell kiln-RunsCol-${column.kind}${i === 0 ? ' kiln-mod-sticky' : ''}`;
      cell.setAttribute('role', 'gridcell');
      cell.dataset.column = columnId(column);
      const text = cellText(run, column, now);
      cell.textContent = text;
      cell.title = `${columnId(column)}: ${text}`;
      if (column.kind === 'attribute' && column.key === 'status') {
        cell.classList.add(`kiln-mod-${run.status.toLowerCase()}`);
      }
      row.append(cell);
    }
    row.addEventListener('click', () => this.activated.emit(run));
    // Reachable by keyboard too: Tab to a row, Enter or Space makes it the active run.
    row.tabIndex = 0;
    row.addEventListener('keydown', event => {
      if ((event.key === 'Enter' || event.key === ' ') && event.target === row) {
        event.preventDefault();
        this.activated.emit(run);
      }
    });
    return row;
  }
}
