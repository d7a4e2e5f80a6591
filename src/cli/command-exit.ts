/** Ends a CLI command with this exit code and a one-line message on stderr (README: exit codes). */
export class CommandExit extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}
