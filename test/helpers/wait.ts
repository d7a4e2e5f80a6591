/** Polls `probe` until it returns a value that satisfies `done`; fails with the last value seen. */
export async function waitFor<T>(
  probe: () => Promise<T>,
  done: (value: T) => boolean,
  options: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  let last: T | undefined;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      last = await probe();
      if (done(last)) return last;
    } catch (err) {
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 100));
  }
  throw new Error(
    `timed out waiting for ${options.what ?? 'condition'}; last value: ${JSON.stringify(last)}` +
      (lastError ? `; last error: ${String(lastError)}` : ''),
  );
}

/** A teardown gate: while closed, gated calls wait; opening releases them all. */
export class Gate {
  private closedPromise: Promise<void> | undefined;
  private release: (() => void) | undefined;
  waiting = 0;

  close(): void {
    if (this.closedPromise) return;
    this.closedPromise = new Promise((resolve) => {
      this.release = resolve;
    });
  }

  open(): void {
    this.release?.();
    this.closedPromise = undefined;
    this.release = undefined;
  }

  async pass(): Promise<void> {
    while (this.closedPromise) {
      this.waiting += 1;
      try {
        await this.closedPromise;
      } finally {
        this.waiting -= 1;
      }
    }
  }
}
