import type { Writable } from 'node:stream';
import pretty from 'pino-pretty';

/** How `npm start` shows the JSON lines its own logger and the worker write. */
export type LogFormat = 'pretty' | 'json';

/**
 * Human-readable on a terminal, JSON lines otherwise (piped to jq, a file, a log shipper), so
 * redirecting `npm start` keeps the exact lines production writes. `pool-reaper worker`
 * itself always writes JSON: only this dev entry point ever reformats.
 */
export function logFormatFor(stdout: { readonly isTTY?: boolean }): LogFormat {
  return stdout.isTTY === true ? 'pretty' : 'json';
}

/**
 * A stream that takes pino's JSON lines and writes them, readable, to `destination`. Every
 * field stays (pino-pretty prints the fields after the message, one per line), so an audit
 * line (`provisioner.drop*`: action, object, cluster, pool token) is as complete as its JSON.
 * Lines that are not JSON pass through unchanged. Synchronous writes: nothing is lost when
 * `npm start` exits right after the worker does.
 */
export function prettyLogStream(
  destination: Writable | number = 1,
  options: { readonly colorize?: boolean } = {},
): Writable {
  return pretty({
    destination,
    sync: true,
    colorize: options.colorize ?? false,
    translateTime: 'SYS:HH:MM:ss.l',
    // The pino default; `service` stays a field: it tells start's own lines from the worker's.
    ignore: 'pid,hostname',
  });
}
