import { readFileSync } from 'node:fs';
import { ConfigError } from './config-error';

/**
 * The variables that may carry a password. Each also reads from `<NAME>_FILE`, the path of a
 * mounted secret (Docker secrets, Kubernetes Secret volumes), so a password need never be in
 * the process environment, where `ps e`, crash dumps and `kubectl describe` would show it.
 */
export const SECRET_VARIABLES = [
  'PROVISIONER_DATABASE_URL',
  'MIGRATE_DATABASE_URL',
  'POSTGRES_ADMIN_URL',
  'POSTGRES_ADMIN_URLS',
  'REDIS_URL',
  'REDIS_URLS',
  'PLATFORM_DATABASE_URL',
] as const;

type Env = Readonly<Record<string, string | undefined>>;

const isSet = (value: string | undefined): value is string => value !== undefined && value.trim() !== '';

/**
 * Returns the environment with every `<NAME>_FILE` replaced by `<NAME>` = the file's content
 * (one trailing newline dropped, as `echo > file` writes one). Setting both is ambiguous, so
 * start-up stops with one line naming the variable. Errors name the variable and the file's
 * path, never a byte of its content.
 */
export function resolveSecretFiles(
  env: Env,
  readFile: (path: string) => string = (p) => readFileSync(p, 'utf8'),
): Env {
  const resolved: Record<string, string | undefined> = { ...env };
  for (const name of SECRET_VARIABLES) {
    const fileVar = `${name}_FILE`;
    const file = env[fileVar];
    if (!isSet(file)) continue;
    if (isSet(env[name])) {
      throw new ConfigError(name, `either ${name} or ${fileVar}, not both (both are set)`);
    }
    let content: string;
    try {
      content = readFile(file.trim());
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
      throw new ConfigError(fileVar, `a readable file, got ${code} for ${file.trim()}`);
    }
    const value = content.replace(/\r?\n$/, '');
    if (value.trim() === '')
      throw new ConfigError(fileVar, `a file with a value, got an empty file ${file.trim()}`);
    resolved[name] = value;
    delete resolved[fileVar];
  }
  return resolved;
}
