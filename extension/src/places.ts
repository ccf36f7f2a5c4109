/** Taking the user to a cell and line the analysis names. */
import { NotebookPanel } from '@jupyterlab/notebook';

export async function reveal(panel: NotebookPanel, cell: number, line: number): Promise<void> {
  const notebook = panel.content;
  if (cell < 0 || cell >= notebook.widgets.length) {
    return;
  }
  notebook.activeCellIndex = cell;
  notebook.deselectAll();
  await notebook.scrollToItem(cell, 'center');
  const widget = notebook.widgets[cell];
  const editor = widget.editor;
  if (editor && line > 0) {
    const lastLine = Math.max(0, editor.lineCount - 1);
    editor.setCursorPosition({ line: Math.min(line - 1, lastLine), column: 0 });
  }
  widget.node.scrollIntoView({ block: 'center' });
  editor?.focus();
}
