/** Raised for a missing or malformed variable; the message is one line that names it. */
export class ConfigError extends Error {
  override readonly name: string = 'ConfigError';
  constructor(
    readonly variable: string,
    readonly expected: string,
  ) {
    super(`${variable}: expected ${expected}`);
  }
}
