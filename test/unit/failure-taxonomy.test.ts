import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CLUSTER_TYPES,
  FAILURE_TYPES,
  type FailureType,
  NON_RETRYABLE_TYPES,
  REFUSAL_TYPES,
  treatmentOf,
  UNKNOWN_FAILURE,
} from '../../src/shared/failure-types';
import * as storeModule from '../../src/store/pool-store';
import * as errorsModule from '../../src/teardown/errors';

/**
 * The one failure taxonomy (src/shared/failure-types.ts) against the classes that raise the
 * failures: a class added without its row, a row left behind by a removed class, or a set
 * that disagrees with the table fails here, before a pass could treat a failure wrongly.
 */

type ErrorClass = new (...args: string[]) => Error;

/** Every exported Error subclass of a module, except the abstract base. */
function errorClassesOf(module: Record<string, unknown>): ErrorClass[] {
  return Object.values(module).filter(
    (v): v is ErrorClass =>
      typeof v === 'function' && v.prototype instanceof Error && v !== errorsModule.TeardownError,
  );
}

// Every constructor takes strings (a message, a site and reason, a type, a cluster and backend).
const instances = [...errorClassesOf(errorsModule), ...errorClassesOf(storeModule)].map(
  (Class) => new Class('a', 'b', 'c'),
);
const failureTypes = Object.keys(FAILURE_TYPES) as FailureType[];

/**
 * Failure types an activity raises as an ApplicationFailure of its own, with no class behind
 * it (e.g. TeardownNotConfirmedError): the type and whether it was raised retryable.
 */
const ACTIVITIES = path.resolve(__dirname, '..', '..', 'activities');
const raisedByActivities = readdirSync(ACTIVITIES)
  .filter((f) => f.endsWith('.ts'))
  .flatMap((f) => [
    ...readFileSync(path.join(ACTIVITIES, f), 'utf8').matchAll(
      /ApplicationFailure\.(retryable|nonRetryable)\(\s*(?:`[^`]*`|'[^']*'|[^,]*),\s*'(\w+)'/g,
    ),
  ])
  .map((m) => ({ type: m[2]!, retry: m[1] === 'retryable' }));

describe('the failure taxonomy', () => {
  it('has a row for every error class the teardown and the store raise, and no row without a class', () => {
    const names = instances.map((e) => e.name).sort();
    expect(names.length).toBeGreaterThan(0);
    for (const e of instances) expect(e.name, `${e.constructor.name} names itself`).toBe(e.constructor.name);
    expect(raisedByActivities.map((r) => r.type)).toContain('TeardownNotConfirmedError');
    expect([...names, ...raisedByActivities.map((r) => r.type)].sort()).toEqual([...failureTypes].sort());
  });

  it('puts every class that must not be retried in the non-retryable set, and only those', () => {
    for (const e of instances) {
      const treatment = treatmentOf(e.name);
      expect(NON_RETRYABLE_TYPES.includes(e.name as FailureType), e.name).toBe(!treatment.retry);
      if (e instanceof errorsModule.TeardownError) expect(e.retryable, e.name).toBe(treatment.retry);
    }
    for (const { type, retry } of raisedByActivities) {
      expect(treatmentOf(type).retry, `${type} is raised ${retry ? 'retryable' : 'non-retryable'}`).toBe(
        retry,
      );
      expect(NON_RETRYABLE_TYPES.includes(type as FailureType), type).toBe(!retry);
    }
  });

  it('puts every refusal in the refusal set: refused, never retried, quarantining, the item`s own', () => {
    for (const type of failureTypes) {
      const t = FAILURE_TYPES[type];
      expect(REFUSAL_TYPES.includes(type), type).toBe(t.outcome === 'refused');
      if (t.outcome === 'refused')
        expect(t, type).toMatchObject({ retry: false, quarantine: true, scope: 'item' });
    }
    // What the teardown audits as `provisioner.drop.refused` (refused before any connection
    // opens) is a refusal of the item, or a cluster this replica cannot reach: never retried.
    for (const e of instances.filter((e) => errorsModule.isRefusal(e))) {
      const t = treatmentOf(e.name);
      expect(t.retry, e.name).toBe(false);
      expect(t.outcome === 'refused' || t.scope === 'cluster', e.name).toBe(true);
    }
    // The store's refusal (a token a live row shares) is counted as refused like the guard's.
    expect(REFUSAL_TYPES).toContain('SharedPoolTokenError');
  });

  it('never quarantines an item for its cluster, and keeps cluster failures in the cluster set', () => {
    for (const type of failureTypes) {
      const t = FAILURE_TYPES[type];
      expect(CLUSTER_TYPES.includes(type), type).toBe(t.scope === 'cluster');
      if (t.scope === 'cluster') expect(t.quarantine, type).toBe(false);
    }
  });

  it('retries what it does not know, without quarantining it', () => {
    for (const type of [undefined, 'Error', 'TypeError', '__proto__', 'constructor', 'hasOwnProperty']) {
      expect(treatmentOf(type), String(type)).toBe(UNKNOWN_FAILURE);
    }
    expect(UNKNOWN_FAILURE).toMatchObject({ retry: true, quarantine: false });
  });
});
