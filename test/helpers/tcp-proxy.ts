import net from 'node:net';

/**
 * A TCP forwarder in front of a real service (Postgres, Redis) so a test can take "the
 * network" away from one client without touching anyone else's connections: refuse new
 * connections for a while (ECONNREFUSED), or cut the ones that are open (ECONNRESET).
 */
export interface TcpProxy {
  readonly port: number;
  /** Local ports of the proxy's own connections to the upstream (as the server sees its clients). */
  upstreamPorts(): number[];
  /** Connections accepted so far. */
  accepted(): number;
  /** Stop listening (new connections are refused) for `ms`, then listen again on the same port. */
  refuseFor(ms: number): Promise<void>;
  /** Stop listening until `until` settles, then listen again on the same port. */
  refuseUntil(until: Promise<unknown>): Promise<void>;
  /** Destroy every open connection, both sides. */
  cutAll(): number;
  close(): Promise<void>;
}

export async function startTcpProxy(upstreamHost: string, upstreamPort: number): Promise<TcpProxy> {
  const pairs = new Set<{ client: net.Socket; upstream: net.Socket }>();
  let accepted = 0;
  const onConnection = (client: net.Socket) => {
    accepted++;
    const upstream = net.connect(upstreamPort, upstreamHost);
    const pair = { client, upstream };
    pairs.add(pair);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      pairs.delete(pair);
    };
    client.on('error', drop);
    upstream.on('error', drop);
    client.on('close', drop);
    upstream.on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  };
  let server = net.createServer(onConnection);
  const listen = (s: net.Server, port: number) =>
    new Promise<number>((resolve, reject) => {
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => resolve((s.address() as net.AddressInfo).port));
    });
  const port = await listen(server, 0);
  const refuseUntil = async (until: Promise<unknown>) => {
    // close() stops accepting at once; its callback would wait for the open connections.
    server.close();
    await until.catch(() => undefined);
    server = net.createServer(onConnection);
    await listen(server, port);
  };
  const stop = (s: net.Server) => new Promise<void>((resolve) => s.close(() => resolve()));
  return {
    port,
    upstreamPorts: () =>
      [...pairs].map((p) => p.upstream.localPort).filter((p): p is number => typeof p === 'number'),
    accepted: () => accepted,
    refuseFor: (ms) => refuseUntil(new Promise((r) => setTimeout(r, ms))),
    refuseUntil,
    cutAll() {
      const n = pairs.size;
      for (const p of [...pairs]) {
        p.client.destroy();
        p.upstream.destroy();
      }
      pairs.clear();
      return n;
    },
    async close() {
      for (const p of [...pairs]) {
        p.client.destroy();
        p.upstream.destroy();
      }
      pairs.clear();
      await stop(server);
    },
  };
}
