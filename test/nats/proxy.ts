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
 * Passes the payload of every message the server sends (`MSG`, and
 * `HMSG` headers and body together) through `rewrite`; the frame's sizes
 * follow the new payload. A rewrite of an `HMSG` must keep its headers.
 */
export function startRewriteProxy(target: string, rewrite: (payload: Buffer) => Buffer): Promise<Proxy> {
  return startProxy(target, (client) => {
    let pending = Buffer.alloc(0);
    return (chunk) => {
      pending = Buffer.concat([pending, chunk]);
      for (;;) {
        const eol = pending.indexOf("\r\n");
        if (eol < 0) return;
        const fields = pending.subarray(0, eol).toString("latin1").split(" ");
        if (fields[0] !== "MSG" && fields[0] !== "HMSG") {
          client.write(pending.subarray(0, eol + 2));
          pending = pending.subarray(eol + 2);
          continue;
        }
        const size = Number(fields.at(-1));
        if (pending.length < eol + 2 + size + 2) return;
        const payload = rewrite(pending.subarray(eol + 2, eol + 2 + size));
        fields[fields.length - 1] = String(payload.length);
        client.write(Buffer.concat([Buffer.from(`${fields.join(" ")}\r\n`, "latin1"), payload, Buffer.from("\r\n")]));
        pending = pending.subarray(eol + 2 + size + 2);
      }
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
