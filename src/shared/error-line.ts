/**
 * The one line a failing command prints on stderr: `pool-reaper: <first line of the message>`.
 * One source of truth for every path that ends the process with an error, so operators (and
 * their log filters) see the same shape whichever path ended it.
 */
export function errorLine(message: string): string {
  return `pool-reaper: ${message.split('\n')[0]}`;
}
