/**
 * The Kiln store as the Experiments panel reads and writes it: `/api/v1` through the server
 * extension (`kiln/api/v1/…`, the token added there), typed with the shapes of `kiln-api`.
 */
import { Experiment, HistoryAxis, RunPage, RunView, Series } from './experiments';
import { requestKiln } from './request';

function post(body: unknown): RequestInit {
  return { method: 'POST', body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } };
}

export function experiments(): Promise<Experiment[]> {
  return requestKiln<Experiment[]>('api/v1/experiments');
}

export interface RunQuery {
  experiment: string;
  filter: string;
  orderBy?: string[];
  pageToken?: string;
  changedSince?: number;
  maxResults?: number;
}

export function searchRuns(query: RunQuery): Promise<RunPage> {
  return requestKiln<RunPage>(
    'api/v1/runs/search',
    post({
      experiments: [query.experiment],
      filter: query.filter,
      order_by: query.orderBy ?? [],
      max_results: query.maxResults ?? 1000,
      page_token: query.pageToken,
      changed_since: query.changedSince
    })
  );
}

/** Every run of the query, page after page (the store's pages stay stable while runs start). */
export async function allRuns(query: RunQuery): Promise<RunPage> {
  const first = await searchRuns(query);
  const runs = first.runs.slice();
  let token = first.next_page_token;
  while (token) {
    const page = await searchRuns({ ...query, pageToken: token });
    runs.push(...page.runs);
    token = page.next_page_token;
  }
  return { runs, cursor: first.cursor };
}

/** The newest runs whose notebook tag ends with `notebookPath`, whichever experiment they
 * logged to (the tag holds the path the kernel was given: absolute, or as the server names it). */
export async function runsOfNotebook(notebookPath: string, tag: string): Promise<RunView[]> {
  // The filter language has no escapes: a path with a ' goes between double quotes.
  const quote = notebookPath.includes("'") ? '"' : "'";
  const page = await requestKiln<RunPage>(
    'api/v1/runs/search',
    post({ filter: `tags.\`${tag}\` LIKE ${quote}%${notebookPath}${quote}`, order_by: ['start_time DESC'], max_results: 20 })
  );
  return page.runs;
}

export function run(id: string): Promise<RunView> {
  return requestKiln<RunView>(`api/v1/runs/${encodeURIComponent(id)}`);
}

export function histories(runs: string[], keys: string[], axis: HistoryAxis, maxPoints: number, range: [number, number] | null): Promise<{ series: Series[] }> {
  return requestKiln<{ series: Series[] }>(
    'api/v1/metrics/history',
    post({ runs, keys, axis, max_points: maxPoints, from: range?.[0], to: range?.[1] })
  );
}

export function rename(id: string, name: string): Promise<unknown> {
  return requestKiln(`api/v1/runs/${encodeURIComponent(id)}`, {
    method: 'PATCH',
    body: JSON.stringify({ name }),
    headers: { 'Content-Type': 'application/json' }
  });
}

export function setTag(id: string, key: string, value: string): Promise<unknown> {
  return requestKiln(`api/v1/runs/${encodeURIComponent(id)}/log`, post({ tags: [{ key, value }] }));
}

export interface Lineage {
  model_version: { name: string; version: number };
  run?: RunView;
  datasets_read: { name: string; id: string; fingerprint: string }[];
  datasets_produced: { name: string; id: string; fingerprint: string }[];
  code_packages: { handle: string; role: string; image: string; digest: string }[];
}

export function lineage(name: string, version: number): Promise<Lineage> {
  return requestKiln<Lineage>(`api/v1/lineage/${encodeURIComponent(name)}/${version}`);
}
