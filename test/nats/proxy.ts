/**
 * TCP proxies in front of a NATS server, for fault tests: what the client
 * sends goes through unchanged; what the server sends goes through a
 * function that may hold it back, drop it or delay it.
 */
import { createServer, type Socket, connect as tcpConnect } from "node:net";

export interface Proxy {
  /** `nats://127.0.0.1:<port>` */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * A proxy to `target`: for each client connection, `fromServer(client)`
 * returns what to do with each chunk the server sends (write it to
 * `client`, or not).
 */
export async function startProxy(
  target: string,
  fromServer: (client: Socket) => (chunk: Buffer) => void,
): Promise<Proxy> {
  const { hostname, port } = new URL(target);
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = tcpConnect(Number(port), hostname);
    sockets.add(client).add(upstream);
    client.pipe(upstream);
    upstream.on("data", fromServer(client));
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

/**
 * Delays every chunk the server sends by `delayMs()` (read when the chunk
 * arrives), in order: a client behind it sees the stream's messages late,
 * as a process on a slow or busy link does.
 */
export function startDelayProxy(target: string, delayMs: () => number): Promise<Proxy> {
  return startProxy(target, (client) => {
    let chain = Promise.resolve();
    return (chunk) => {
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
    };
  });
}

/**
 * Passes on at most `bytes` of what the server sends every `everyMs`, in
 * order: a link slow enough that reading a stream takes seconds while
 * every message still arrives soon after the previous one.
 */
export function startThrottleProxy(target: string, bytes: number, everyMs: number): Promise<Proxy> {
  return startProxy(target, (client) => {
    let queue = Buffer.alloc(0);
    let timer: ReturnType<typeof setInterval> | undefined;
    const tick = () => {
      if (client.destroyed || queue.length === 0) {
        clearInterval(timer);
        timer = undefined;
        return;
      }
      client.write(queue.subarray(0, bytes));
      queue = queue.subarray(bytes);
    };
    return (chunk) => {
      queue = Buffer.concat([queue, chunk]);
      timer ??= setInterval(tick, everyMs);
    };
  });
}
