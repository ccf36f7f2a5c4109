import { describe, expect, it } from 'vitest';

import type { Analysis } from './analysis';
import { defaultHandle, rolesOf, withRole } from './roles';

describe('withRole', () => {
  it.each([
    { tags: [], role: 'train', want: ['train'] },
    { tags: ['data'], role: 'train', want: ['train'] },
    { tags: ['keep', 'data', 'also'], role: 'infer', want: ['keep', 'also', 'infer'] },
    { tags: ['setup', 'skip'], role: 'skip', want: ['skip'] },
    { tags: ['keep', 'train'], role: null, want: ['keep'] },
    { tags: ['Train'], role: null, want: ['Train'] }
  ] as const)('$tags + $role → $want', ({ tags, role, want }) => {
    expect(withRole(tags, role)).toEqual(want);
  });
});

describe('rolesOf', () => {
  it('takes each cell role from the analysis, untagged cells as exploration', () => {
    const analysis: Analysis = {
      steps: { setup: [1], data: [2, 3], train: [5], infer: [6] },
      untagged: [4],
      skipped: [7],
      parameters: [],
      flows: [],
      infer: null,
      diagnostics: []
    };
    expect([...rolesOf(analysis)].sort((a, b) => a[0] - b[0])).toEqual([
      [1, 'setup'],
      [2, 'data'],
      [3, 'data'],
      [4, 'exploration'],
      [5, 'train'],
      [6, 'infer'],
      [7, 'skip']
    ]);
  });
});

describe('defaultHandle', () => {
  it.each([
    ['notebooks/classifier.ipynb', 'classifier'],
    ['My Notebook.ipynb', 'my-notebook'],
    ['a/b/__Iris v2__.ipynb', 'iris-v2'],
    ['__.ipynb', 'notebook']
  ])('%s → %s', (path, handle) => {
    expect(defaultHandle(path)).toBe(handle);
  });
});
