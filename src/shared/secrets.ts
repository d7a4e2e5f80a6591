const MAX_MESSAGE = 400;

/**
 * Removes credentials from free text: `scheme://user:pass@host` loses its user info and
 * libpq-style `password=...` its value. Driver messages can embed the URL they failed on.
 * Every room that prints a driver's message uses it (teardown, platform, worker, activities),
 * so it lives here, where all of them may import it. Pure.
 */
export function scrubSecrets(text: string): string {
  const scrubbed = text
    .replace(/([a-z][a-z0-9+.-]*:\/\/)[^\s/@]*@/gi, '$1[redacted]@')
    .replace(/(password\s*=\s*)('[^']*'|"[^"]*"|\S+)/gi, '$1[redacted]');
  return scrubbed.length > MAX_MESSAGE ? `${scrubbed.slice(0, MAX_MESSAGE)}…` : scrubbed;
}
