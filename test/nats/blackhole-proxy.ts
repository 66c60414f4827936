/**
 * A TCP proxy in front of a NATS server that can make the server go silent
 * at a chosen moment, as if the whole cluster died: armed, it drops the
 * messages delivered on subjects under a prefix (so a consumer of them
 * learns nothing), forwards the next JetStream publish acknowledgement of a
 * stream, and from then on forwards nothing the server sends.
 */
import { startProxy } from "./proxy.js";

export interface BlackholeProxy {
  /** `nats://127.0.0.1:<port>` */
  readonly url: string;
  /** Drop deliveries under `prefix`; after the next acknowledgement of `stream`, forward nothing more. */
  arm(prefix: string, stream: string): void;
  /** True once the acknowledgement passed and the server went silent. */
  readonly silent: boolean;
  close(): Promise<void>;
}

export async function startBlackholeProxy(target: string): Promise<BlackholeProxy> {
  let armed: { prefix: string; ack: string } | undefined;
  let silent = false;
  const proxy = await startProxy(target, (client) => {
    let pending = Buffer.alloc(0);
    return (chunk) => {
      pending = Buffer.concat([pending, chunk]);
      for (;;) {
        const eol = pending.indexOf("\r\n");
        if (eol < 0) return;
        const line = pending.subarray(0, eol).toString("latin1");
        const [op, subject] = line.split(" ");
        let size = eol + 2;
        if (op === "MSG" || op === "HMSG") {
          const payload = Number(line.split(" ").at(-1));
          size = eol + 2 + payload + 2;
          if (pending.length < size) return;
        }
        const frame = pending.subarray(0, size);
        pending = pending.subarray(size);
        if (silent) continue;
        if (armed && (op === "MSG" || op === "HMSG")) {
          if (subject?.startsWith(armed.prefix)) continue;
          if (frame.includes(armed.ack)) {
            client.write(frame);
            silent = true;
            continue;
          }
        }
        client.write(frame);
      }
    };
  });
  return {
    url: proxy.url,
    arm(prefix, stream) {
      armed = { prefix, ack: `{"stream":${JSON.stringify(stream)},` };
    },
    get silent() {
      return silent;
    },
    close: () => proxy.close(),
  };
}
