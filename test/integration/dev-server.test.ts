import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { DevServerStartError, startDevServer } from '../../src/dev/temporal-server';
import { startDevServerWithRetry } from '../helpers/dev-server';

/**
 * A dev server that dies at start-up (seen on this shared machine: exit code 2, a Go panic
 * while its services bind) must say why, and the tests' own servers start again instead of
 * failing a whole scenario. The CLI is wrapped by a script that panics on its first call.
 */
describe('a Temporal dev server that dies at start-up', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pool-reaper-devserver-'));
  const calls = path.join(dir, 'calls');
  const cli = path.join(dir, 'temporal');
  writeFileSync(
    cli,
    [
      '#!/bin/sh',
      `echo x >> '${calls}'`,
      `if [ "$(wc -l < '${calls}')" -eq 1 ]; then`,
      '  echo "panic: listen tcp 127.0.0.1:1: bind: address already in use"',
      // A long stack after the message, as Go prints it: the message must survive the cut.
      '  i=0; while [ $i -lt 400 ]; do echo "goroutine frame $i go.uber.org/fx/app.go:517 +0x9bd"; i=$((i+1)); done',
      '  exit 2',
      'fi',
      `exec '${inject('temporalCliPath')}' "$@"`,
      '',
    ].join('\n'),
  );
  chmodSync(cli, 0o755);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('fails with the panic message kept, then starts on the next attempt', async () => {
    const error = await startDevServer({ cliPath: cli, uiPort: false }).then(
      (s) => s.stop().then(() => undefined),
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(DevServerStartError);
    expect((error as Error).message).toMatch(/^temporal server exited with code 2 before it was ready\n/);
    expect((error as Error).message).toContain('panic: listen tcp 127.0.0.1:1: bind: address already in use');
    expect((error as Error).message).toContain('goroutine frame 399');

    rmSync(calls, { force: true });
    const server = await startDevServerWithRetry({ cliPath: cli, uiPort: false });
    try {
      expect(server.address).toMatch(/^127\.0\.0\.1:\d+$/);
    } finally {
      await server.stop();
    }
  });
});
