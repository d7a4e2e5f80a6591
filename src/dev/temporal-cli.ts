import { execFile, spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** The CLI release whose go.mod has no `replace` directive, so `go install pkg@version` works. */
export const TEMPORAL_CLI_MODULE = 'github.com/temporalio/cli/cmd/temporal@v1.5.1';

export class TemporalCliNotFoundError extends Error {
  override readonly name = 'TemporalCliNotFoundError';
  constructor(detail: string) {
    super(
      `Temporal CLI not found (${detail}): install it with \`go install ${TEMPORAL_CLI_MODULE}\` ` +
        'or from https://docs.temporal.io/cli, or set TEMPORAL_CLI_PATH',
    );
  }
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(name: string, envPath = process.env['PATH'] ?? ''): string | undefined {
  for (const dir of envPath.split(path.delimiter)) {
    if (dir === '') continue;
    const candidate = path.join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

async function goBin(): Promise<string | undefined> {
  const go = onPath('go') ?? (isExecutable('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : undefined);
  if (!go) return undefined;
  const { stdout } = await execFileAsync(go, ['env', 'GOPATH']);
  return path.join(stdout.trim(), 'bin', 'temporal');
}

function goExecutable(): string | undefined {
  return onPath('go') ?? (isExecutable('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : undefined);
}

/**
 * Finds the official Temporal CLI: TEMPORAL_CLI_PATH, then PATH, then `$(go env GOPATH)/bin`.
 * Installs it with Go when allowed and absent (about 2.5 minutes on a new 2-core machine).
 */
export async function findTemporalCli(
  options: { install?: boolean; log?: (line: string) => void } = {},
): Promise<string> {
  const explicit = process.env['TEMPORAL_CLI_PATH'];
  if (explicit) {
    if (isExecutable(explicit)) return explicit;
    throw new TemporalCliNotFoundError(`TEMPORAL_CLI_PATH=${explicit} is not an executable file`);
  }
  const fromPath = onPath('temporal');
  if (fromPath) return fromPath;
  const fromGo = await goBin();
  if (fromGo && isExecutable(fromGo)) return fromGo;
  const go = goExecutable();
  if (!go || fromGo === undefined) throw new TemporalCliNotFoundError('not on PATH and Go is not installed');
  if (options.install === false)
    throw new TemporalCliNotFoundError('not on PATH nor in $(go env GOPATH)/bin');
  options.log?.(
    `installing the Temporal CLI with go install ${TEMPORAL_CLI_MODULE} (about 2.5 minutes, once)`,
  );
  await new Promise<void>((resolve, reject) => {
    const child = spawn(go, ['install', TEMPORAL_CLI_MODULE], { stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new TemporalCliNotFoundError(`go install exited with ${code}`)),
    );
  });
  if (!isExecutable(fromGo)) throw new TemporalCliNotFoundError(`go install did not produce ${fromGo}`);
  return fromGo;
}
