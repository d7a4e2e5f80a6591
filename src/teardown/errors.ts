/**
 * The teardown's failures, one module per idea behind this one import:
 * - error-classes.ts: the typed errors (their treatment comes from src/shared/failure-types.ts);
 * - driver-errors.ts: reading a driver's error (origin, one scrubbed line);
 * - postgres-errors.ts / redis-errors.ts: each backend's classification;
 * - ledger.ts: the running account of one teardown (its result, or an error's `partial`).
 */

export { scrubSecrets } from '../shared/secrets';
export type { ErrorContext } from './driver-errors';
export * from './error-classes';
export * from './ledger';
export * from './postgres-errors';
export * from './redis-errors';
