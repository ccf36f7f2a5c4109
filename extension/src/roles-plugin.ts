/**
 * Setting a cell's role: `kiln:tag-<role>` and `kiln:untag` on the active cell (palette
 * "Kiln", keyboard shortcuts in the settings schema) and a role picker in the cell toolbar.
 * Each writes the standard `metadata.tags`; the badges follow from the next analysis.
 */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, IToolbarWidgetRegistry } from '@jupyterlab/apputils';
import { Cell } from '@jupyterlab/cells';
import { INotebookTracker } from '@jupyterlab/notebook';
import { Widget } from '@lumino/widgets';

import { ROLES, Role, isRole, withRole } from './roles';
import { IKilnPipeline } from './tokens';

export const CATEGORY = 'Kiln';

export function tagCommand(role: Role): string {
  return `kiln:tag-${role}`;
}

export const UNTAG = 'kiln:untag';

function setRole(cell: Cell, role: Role | null): void {
  const tags = (cell.model.getMetadata('tags') as string[] | undefined) ?? [];
  const next = withRole(tags, role);
  if (next.length === 0) {
    cell.model.deleteMetadata('tags');
  } else {
    cell.model.setMetadata('tags', next);
  }
}

function tagsOf(cell: Cell): string[] {
  return (cell.model.getMetadata('tags') as string[] | undefined) ?? [];
}

/** The cell toolbar's role picker: a labelled select bound to the same tags. */
class RolePicker extends Widget {
  constructor(private readonly cell: Cell) {
    super({ node: document.createElement('select') });
    const select = this.node as HTMLSelectElement;
    select.classList.add('kiln-RolePicker', 'jp-mod-styled');
    select.setAttribute('aria-label', 'Kiln cell role');
    select.title = 'Kiln cell role';
    for (const value of ['', ...ROLES]) {
      const option = document.createElement('option');
      option.value = value;
      option.textContent = value === '' ? 'no role' : value;
      select.appendChild(option);
    }
    select.addEventListener('change', () => setRole(this.cell, isRole(select.value) ? select.value : null));
    cell.model.metadataChanged.connect(this.sync, this);
    this.sync();
  }

  private sync(): void {
    const role = tagsOf(this.cell).find(isRole);
    (this.node as HTMLSelectElement).value = role ?? '';
  }
}

export const rolesPlugin: JupyterFrontEndPlugin<void> = {
  id: 'kiln-jupyterlab:roles',
  description: 'Cell roles: commands, shortcuts and the cell toolbar picker.',
  autoStart: true,
  requires: [INotebookTracker, IKilnPipeline],
  optional: [ICommandPalette, IToolbarWidgetRegistry],
  activate: (
    app: JupyterFrontEnd,
    notebooks: INotebookTracker,
    pipeline: IKilnPipeline,
    palette: ICommandPalette | null,
    toolbars: IToolbarWidgetRegistry | null
  ) => {
    const active = () => notebooks.activeCell;
    const enabled = () => active()?.model.type === 'code';
    const apply = (role: Role | null) => {
      const cell = active();
      if (cell && cell.model.type === 'code') {
        setRole(cell, role);
        pipeline.refresh();
      }
    };
    for (const role of ROLES) {
      app.commands.addCommand(tagCommand(role), {
        label: `Tag Cell as ${role}`,
        caption: `Give the active code cell the Kiln role "${role}" (its other roles are removed)`,
        isEnabled: enabled,
        isToggled: () => {
          const cell = active();
          return cell !== null && tagsOf(cell).includes(role);
        },
        execute: () => apply(role)
      });
      palette?.addItem({ command: tagCommand(role), category: CATEGORY });
    }
    app.commands.addCommand(UNTAG, {
      label: 'Remove Cell Role',
      caption: 'Remove the Kiln role from the active code cell (exploration: left out of components)',
      isEnabled: enabled,
      execute: () => apply(null)
    });
    palette?.addItem({ command: UNTAG, category: CATEGORY });
    toolbars?.addFactory<Cell>('Cell', 'kiln-role', cell => new RolePicker(cell));
  }
};
