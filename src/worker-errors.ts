// The worker's fatal errors, apart from the worker itself: the CLI maps them to exit codes
// without loading @temporalio/worker (the native bridge) for every command.

/** Exit code of a worker that lost Temporal for longer than REAPER_TEMPORAL_LOSS_LIMIT. */
export const TEMPORAL_LOST_EXIT_CODE = 8;

/** Temporal was unreachable for longer than REAPER_TEMPORAL_LOSS_LIMIT while the worker ran. */
export class TemporalLostError extends Error {
  override readonly name = 'TemporalLostError';
}

/** The provisioner database did not answer within the start-up budget. */
export class ProvisionerUnreachableError extends Error {
  override readonly name = 'ProvisionerUnreachableError';
}
