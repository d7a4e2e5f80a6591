import {
  type DevServer,
  type DevServerOptions,
  DevServerStartError,
  startDevServer,
} from '../../src/dev/temporal-server';

/**
 * startDevServer, tried up to `attempts` times when the server dies before it is ready. On a
 * machine shared with other test runs, a dev server now and then exits at start-up (seen:
 * exit code 2, a panic while its services bind); a fresh process, on fresh ports unless the
 * caller needs `options.port`, starts. Any other failure, and the last one, is thrown.
 */
export async function startDevServerWithRetry(options: DevServerOptions, attempts = 3): Promise<DevServer> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startDevServer(options);
    } catch (err) {
      if (!(err instanceof DevServerStartError) || attempt >= attempts) throw err;
      if (!/exited with code/.test(err.message)) throw err;
      console.log(
        `[dev server] start attempt ${attempt} of ${attempts} failed, retrying: ${err.message.split('\n')[0]}`,
      );
    }
  }
}
