/**
 * A TCP proxy in front of a NATS server that delays what the server sends
 * by a chosen time (in order): a client behind it sees the stream's
 * messages late, as a process on a slow or busy link does.
 */
import { createServer, type Socket, connect as tcpConnect } from "node:net";

export interface DelayProxy {
  /** `nats://127.0.0.1:<port>` */
  readonly url: string;
  close(): Promise<void>;
}

/** Delays every chunk the server sends by `delayMs()` (read when the chunk arrives). */
export async function startDelayProxy(target: string, delayMs: () => number): Promise<DelayProxy> {
  const { hostname, port } = new URL(target);
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = tcpConnect(Number(port), hostname);
    sockets.add(client).add(upstream);
    client.pipe(upstream);
    let chain = Promise.resolve();
    upstream.on("data", (chunk: Buffer) => {
      const delay = delayMs();
      chain = chain.then(
        () =>
          new Promise<void>((resolve) =>
            setTimeout(() => {
              if (!client.destroyed) client.write(chunk);
              resolve();
            }, delay),
          ),
      );
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address() as { port: number };
  return {
    url: `nats://127.0.0.1:${address.port}`,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
