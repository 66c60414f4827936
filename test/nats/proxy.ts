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

/** A frame the server sent, as {@link startHoldProxy} sorts it. */
export interface ClassifiedFrame {
  /** A JetStream delivery (reply subject `$JS.ACK.…`), a reply to a message get, or anything else. */
  readonly kind: "delivery" | "get" | "other";
  /** A delivery's stream sequence (0 otherwise). */
  readonly seq: number;
  /** A delivery's consumer (empty otherwise). */
  readonly consumer: string;
  readonly frame: ServerFrame;
}

function classify(frame: ServerFrame): ClassifiedFrame {
  const { fields, payload } = frame;
  const reply = fields.length === (fields[0] === "HMSG" ? 6 : 5) ? fields[3] : undefined;
  if (payload !== undefined && reply?.startsWith("$JS.ACK.")) {
    // $JS.ACK.<stream>.<consumer>.<delivered>.<streamSeq>.<consumerSeq>.<timestamp>.<pending> (+2 tokens with a domain)
    const t = reply.split(".");
    const shift = t.length >= 11 ? 2 : 0;
    return { kind: "delivery", seq: Number(t[5 + shift]), consumer: t[3 + shift] as string, frame };
  }
  if (payload?.includes("stream_msg_get_response")) return { kind: "get", seq: 0, consumer: "", frame };
  return { kind: "other", seq: 0, consumer: "", frame };
}

/** A proxy whose test decides, frame by frame, what the server's replies and deliveries do. */
export interface HoldProxy extends Proxy {
  /** True holds a frame back (until {@link flush} finds it false); read for every frame. @default none held */
  hold: (f: ClassifiedFrame) => boolean;
  /** Passes a frame on this many ms late (frames may then overtake each other). @default 0 */
  delay: (f: ClassifiedFrame) => number;
  /** What is passed on for a frame. @default its bytes */
  rewrite: (f: ClassifiedFrame) => Buffer;
  /** Passes on, in order, the held frames `hold` now lets through. */
  flush(): void;
  /** Holds, delays and rewrites nothing from now on (the defaults). */
  reset(): void;
  /** The frames held back now. */
  readonly held: readonly ClassifiedFrame[];
  /** The frames passed on so far. */
  readonly passed: readonly ClassifiedFrame[];
}

export async function startHoldProxy(target: string): Promise<HoldProxy> {
  const queues = new Map<Socket, ClassifiedFrame[]>();
  const held: ClassifiedFrame[] = [];
  const passed: ClassifiedFrame[] = [];
  const send = (client: Socket, f: ClassifiedFrame) => {
    const write = () => {
      passed.push(f);
      if (!client.destroyed) client.write(self.rewrite(f));
    };
    const ms = self.delay(f);
    if (ms > 0) setTimeout(write, ms);
    else write();
  };
  const self = {
    hold: (_f: ClassifiedFrame) => false,
    delay: (_f: ClassifiedFrame) => 0,
    rewrite: (f: ClassifiedFrame) => f.frame.bytes,
    held,
    passed,
    reset() {
      self.hold = () => false;
      self.delay = () => 0;
      self.rewrite = (f: ClassifiedFrame) => f.frame.bytes;
    },
    flush() {
      held.length = 0;
      for (const [client, queue] of queues) {
        const keep = queue.filter((f) => self.hold(f));
        for (const f of queue) if (!keep.includes(f)) send(client, f);
        queues.set(client, keep);
        held.push(...keep);
      }
    },
  };
  const proxy = await startProxy(target, (client) => {
    queues.set(client, []);
    return serverFrames((frame) => {
      const f = classify(frame);
      if (self.hold(f)) {
        queues.get(client)?.push(f);
        held.push(f);
      } else send(client, f);
    });
  });
  return Object.assign(self, { url: proxy.url, close: () => proxy.close() });
}

/** `f` with its delivery's pending count raised by `more` (as nats-server miscounts it). */
export function withPending(f: ClassifiedFrame, more: number): Buffer {
  if (f.kind !== "delivery" || f.frame.payload === undefined) return f.frame.bytes;
  const { fields, payload } = f.frame;
  const tokens = (fields[3] as string).split(".");
  tokens[tokens.length - 1] = String(Number(tokens.at(-1)) + more);
  const line = [fields[0], fields[1], fields[2], tokens.join("."), ...fields.slice(4)].join(" ");
  return Buffer.concat([Buffer.from(`${line}\r\n`, "latin1"), payload, Buffer.from("\r\n")]);
}
