/**
 * Deployments as "Push to production" and the Deployments panel reach them: the store's
 * `/api/v1` (models, code packages, deployments, their status and traffic) and the serving
 * gateway's OIP v2 face, both through the server extension (`kiln/api/v1/…`, `kiln/v2/…`).
 */
import { Deployment, DeploymentStatus, ModelMetadata, ModelVersion, Traffic } from './deployments';
import { RunView } from './experiments';
import { KilnError, requestKiln } from './request';

function json(method: string, body: unknown): RequestInit {
  return { method, body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } };
}

const at = (handle: string) => `api/v1/deployments/${encodeURIComponent(handle)}`;

export function deployments(): Promise<Deployment[]> {
  return requestKiln<Deployment[]>('api/v1/deployments');
}

/** The handle's deployment, or `null` when nothing is deployed under it yet. */
export async function deployment(handle: string): Promise<Deployment | null> {
  try {
    return await requestKiln<Deployment>(at(handle));
  } catch (error) {
    if (error instanceof KilnError && error.status === 404) {
      return null;
    }
    throw error;
  }
}

export function status(handle: string): Promise<DeploymentStatus> {
  return requestKiln<DeploymentStatus>(`${at(handle)}/status`);
}

export function traffic(handle: string, since: number, bucketMs: number): Promise<Traffic> {
  return requestKiln<Traffic>(`${at(handle)}/traffic?since=${Math.floor(since)}&bucket_ms=${bucketMs}`);
}

export interface DeployRequest {
  model_version: number;
  strategy: string;
  runner?: string;
  /** The revision the user saw (0: nothing deployed): the store refuses the change when
   * another came first. */
  expected_revision: number;
}

export function deploy(handle: string, request: DeployRequest): Promise<Deployment> {
  return requestKiln<Deployment>(at(handle), json('PUT', request));
}

export function promote(handle: string, expectedRevision: number): Promise<Deployment> {
  return requestKiln<Deployment>(`${at(handle)}/promote`, json('POST', { expected_revision: expectedRevision }));
}

export function rollback(handle: string, expectedRevision: number): Promise<Deployment> {
  return requestKiln<Deployment>(`${at(handle)}/rollback`, json('POST', { expected_revision: expectedRevision }));
}

/** The registered models (their names are handles). */
export function models(): Promise<{ name: string }[]> {
  return requestKiln<{ name: string }[]>('api/v1/models');
}

/** A handle's model versions, newest first; none when the model is not registered yet. */
export async function modelVersions(handle: string): Promise<ModelVersion[]> {
  try {
    const list = await requestKiln<ModelVersion[]>(`api/v1/models/${encodeURIComponent(handle)}/versions`);
    return list.slice().sort((a, b) => b.version - a.version);
  } catch (error) {
    if (error instanceof KilnError && error.status === 404) {
      return [];
    }
    throw error;
  }
}

/** Whether the handle has an infer image registered (what its instances run). */
export async function hasInferImage(handle: string): Promise<boolean> {
  const packages = await requestKiln<{ role: string }[]>(`api/v1/code-packages?handle=${encodeURIComponent(handle)}`);
  return packages.some(p => p.role === 'infer');
}

export function run(id: string): Promise<RunView> {
  return requestKiln<RunView>(`api/v1/runs/${encodeURIComponent(id)}`);
}

/** The model's OIP v2 metadata, from an instance behind the gateway. */
export function metadata(handle: string): Promise<ModelMetadata> {
  return requestKiln<ModelMetadata>(`v2/models/${encodeURIComponent(handle)}`);
}

export interface InferAnswer {
  model_name: string;
  model_version?: string;
  id?: string;
  outputs: { name: string; datatype: string; shape: number[]; data: unknown[] }[];
}

/** One OIP v2 inference through the gateway. */
export function infer(handle: string, body: string): Promise<InferAnswer> {
  return requestKiln<InferAnswer>(`v2/models/${encodeURIComponent(handle)}/infer`, { method: 'POST', body, headers: { 'Content-Type': 'application/json' } });
}
