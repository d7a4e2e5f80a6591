import type { Client } from '@temporalio/client';
import { ReaperClient } from '../client';
import type { ReapNowRequest } from '../shared/messages';
import type { PassSummary } from '../shared/types';
import type { ReaperStatus, ReaperTrigger } from './types';

/** The ticker workflow behind the common operator interface: signals, the update, the query. */
export class TickerTrigger implements ReaperTrigger {
  readonly mode = 'ticker' as const;
  private readonly reaper: ReaperClient;

  constructor(client: Client, workflowId: string) {
    this.reaper = new ReaperClient(client, workflowId);
  }

  reapNow(request: ReapNowRequest = {}): Promise<void> {
    return this.reaper.reapNow(request);
  }

  reapNowAndWait(request: ReapNowRequest = {}): Promise<PassSummary> {
    return this.reaper.reapNowAndWait(request);
  }

  pause(request: { reason?: string } = {}): Promise<void> {
    return this.reaper.pause(request);
  }

  resume(request: { reason?: string } = {}): Promise<void> {
    return this.reaper.resume(request);
  }

  async status(): Promise<ReaperStatus> {
    const status = await this.reaper.status();
    return {
      mode: 'ticker',
      ...status,
      nextRunTimes: status.nextTickAt ? [status.nextTickAt] : [],
    };
  }

  passDetails(passId: string): Promise<string | undefined> {
    return this.reaper.passDetails(passId);
  }
}
