/**
 * A TCP proxy in front of a NATS server that can make the server go silent
 * at a chosen moment, as if the whole cluster died: armed, it drops the
 * messages delivered on subjects under a prefix (so a consumer of them
 * learns nothing), forwards the next JetStream publish acknowledgement of a
 * stream, and from then on forwards nothing the server sends.
 */
import { serverFrames, startProxy } from "./proxy.js";

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
  const proxy = await startProxy(target, (client) =>
    serverFrames(({ fields, payload, bytes }) => {
      if (silent) return;
      if (armed && payload !== undefined) {
        if (fields[1]?.startsWith(armed.prefix)) return;
        if (bytes.includes(armed.ack)) {
          client.write(bytes);
          silent = true;
          return;
        }
      }
      client.write(bytes);
    }),
  );
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
