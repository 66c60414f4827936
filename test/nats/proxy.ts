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

/** One frame the server sent: a protocol line, with its payload for a message (`MSG`, `HMSG`). */
export interface ServerFrame {
  /** The line's fields (`MSG <subject> <sid> [reply] <size>`…). */
  readonly fields: string[];
  /** The payload of a message (`HMSG`: headers and body together); undefined for other lines. */
  readonly payload: Buffer | undefined;
  /** The frame's bytes as the server sent them. */
  readonly bytes: Buffer;
}

/** Splits what the server sends into whole frames, in order, however the chunks cut them. */
export function serverFrames(onFrame: (frame: ServerFrame) => void): (chunk: Buffer) => void {
  let pending = Buffer.alloc(0);
  return (chunk) => {
    pending = Buffer.concat([pending, chunk]);
    for (;;) {
      const eol = pending.indexOf("\r\n");
      if (eol < 0) return;
      const fields = pending.subarray(0, eol).toString("latin1").split(" ");
      const message = fields[0] === "MSG" || fields[0] === "HMSG";
      const size = message ? Number(fields.at(-1)) : 0;
      const end = message ? eol + 2 + size + 2 : eol + 2;
      if (pending.length < end) return;
      const bytes = pending.subarray(0, end);
      pending = pending.subarray(end);
      onFrame({ fields, payload: message ? bytes.subarray(eol + 2, eol + 2 + size) : undefined, bytes });
    }
  };
}

/**
 * Passes the payload of every message the server sends (`MSG`, and
 * `HMSG` headers and body together) through `rewrite`; the frame's sizes
 * follow the new payload. A rewrite of an `HMSG` must keep its headers.
 */
export function startRewriteProxy(target: string, rewrite: (payload: Buffer) => Buffer): Promise<Proxy> {
  return startProxy(target, (client) =>
    serverFrames(({ fields, payload, bytes }) => {
      if (payload === undefined) {
        client.write(bytes);
        return;
      }
      const rewritten = rewrite(payload);
      const line = [...fields.slice(0, -1), String(rewritten.length)].join(" ");
      client.write(Buffer.concat([Buffer.from(`${line}\r\n`, "latin1"), rewritten, Buffer.from("\r\n")]));
    }),
  );
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
