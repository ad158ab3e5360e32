/**
 * A TCP proxy a test controls, between the code under test and a real server: it can drop every
 * connection (as a crashed peer or a reset network would), freeze them (a hung server or a partition:
 * connections stay open and nothing answers, new ones are accepted and never answered) and thaw them.
 */
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';

export interface TcpProxy {
  /** The port to connect to instead of the target's. */
  port: number;
  /** Destroys every open connection; new ones are proxied as before. */
  drop(): void;
  /** Stops forwarding in both directions, on open and on new connections, until thaw(). */
  freeze(): void;
  /** Forwards again everything held back while frozen. */
  thaw(): void;
  /** Refuses new connections (and drops open ones) until accept(): the server is gone. */
  refuse(): void;
  accept(): void;
  /** Connections open now. */
  connections(): number;
  close(): Promise<void>;
}

interface Pair {
  client: Socket;
  server: Socket;
}

export async function startTcpProxy(
  target: { host?: string; port: number },
  listenPort = 0,
): Promise<TcpProxy> {
  const pairs = new Set<Pair>();
  let frozen = false;
  let refusing = false;
  const host = target.host ?? '127.0.0.1';

  const setFlowing = (pair: Pair, flowing: boolean) => {
    for (const socket of [pair.client, pair.server]) {
      if (flowing) socket.resume();
      else socket.pause();
    }
  };

  const server: Server = createServer({ pauseOnConnect: true }, (client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = tcpConnect({ host, port: target.port });
    upstream.pause();
    const pair: Pair = { client, server: upstream };
    pairs.add(pair);
    const close = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close);
    upstream.on('error', close);
    client.on('close', close);
    upstream.on('close', close);
    // pipe() would resume the sockets; data is forwarded by hand so freeze() can hold it back.
    client.on('data', (chunk) => upstream.write(chunk));
    upstream.on('data', (chunk) => client.write(chunk));
    if (!frozen) setFlowing(pair, true);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listenPort, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('proxy has no port');

  const drop = () => {
    for (const pair of [...pairs]) {
      pair.client.destroy();
      pair.server.destroy();
      pairs.delete(pair);
    }
  };
  return {
    port: address.port,
    drop,
    freeze() {
      frozen = true;
      for (const pair of pairs) setFlowing(pair, false);
    },
    thaw() {
      frozen = false;
      for (const pair of pairs) setFlowing(pair, true);
    },
    refuse() {
      refusing = true;
      drop();
    },
    accept() {
      refusing = false;
    },
    connections: () => pairs.size,
    async close() {
      drop();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
