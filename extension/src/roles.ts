/**
 * Cell roles as notebook metadata: one role per cell in the standard `metadata.tags`, other
 * tags kept. Which role a cell *has* (a tag, or a first-line directive such as
 * `// kiln: train`) is decided by Kiln's one reader, in Rust, and comes back with the
 * analysis (`rolesOf`); this module only writes tags.
 */
import type { Analysis } from './analysis';

export const ROLES = ['setup', 'parameters', 'data', 'train', 'infer', 'skip'] as const;
export type Role = (typeof ROLES)[number];

export function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}

/** `tags` with `role` as the cell's only role (`null`: no role); other tags keep their order. */
export function withRole(tags: readonly string[], role: Role | null): string[] {
  const kept = tags.filter(tag => !isRole(tag));
  return role === null ? kept : [...kept, role];
}

/** What a cell's badge shows: its role, or `exploration` for a code cell without one. */
export type Badge = Role | 'exploration';

/**
 * Each code cell's role by index, from the analysis: the steps' cells, the untagged cells
 * (exploration) and the skipped ones. Cells the analysis does not list have no badge.
 */
export function rolesOf(analysis: Analysis): Map<number, Badge> {
  const roles = new Map<number, Badge>();
  for (const [step, cells] of Object.entries(analysis.steps)) {
    if (isRole(step)) {
      for (const cell of cells) {
        roles.set(cell, step);
      }
    }
  }
  for (const cell of analysis.untagged) {
    roles.set(cell, 'exploration');
  }
  for (const cell of analysis.skipped) {
    roles.set(cell, 'skip');
  }
  return roles;
}

/** The handle a notebook's components are offered under: its file name, as `kiln` writes
 * handles (lowercase letters and digits, `-` between words). The CLI has the last word. */
export function defaultHandle(path: string): string {
  const name = path.split('/').pop() ?? '';
  const stem = name.replace(/\.ipynb$/i, '').toLowerCase();
  const handle = stem.replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
  return handle || 'notebook';
}
