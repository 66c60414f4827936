/**
 * The live feed of a namespace, streamed to the page with Server-Sent
 * Events: `store.watch(namespace)` from the current state; the page gets
 * a `caught-up` event at the barrier (it then reloads the namespace), then
 * a `change` event per later change, and `feed-error` if the feed fails
 * or ends (its store closed).
 */
import type { ServerResponse } from "node:http";
import { ErrorCode, isStatelogError, messageOf, type Store } from "../index.js";
import { changeView } from "./data.js";
import { SECURITY_HEADERS } from "./security.js";

/** A comment line sent this often keeps proxies and the browser from closing an idle stream. */
const KEEPALIVE_MS = 15_000;

/**
 * The most changes the feed reads from the store at a time: while a slow client's response is full,
 * the feed holds at most this many changes read and not yet sent.
 */
const LIVE_BATCH_SIZE = 100;

/** The open live feeds of an inspector, ended together on close. */
export class LiveFeeds {
  readonly #open = new Set<() => void>();

  constructor(private readonly max: number) {}

  /** How many feeds are open. */
  get size(): number {
    return this.#open.size;
  }

  /** Whether one more feed may open. */
  get full(): boolean {
    return this.#open.size >= this.max;
  }

  /** Streams the feed of `namespace` to `res` until the client leaves, the feed fails or {@link closeAll}. */
  async stream(store: Store, namespace: string, res: ServerResponse): Promise<void> {
    const watch = store.watch;
    if (!store.capabilities.watch || typeof watch !== "function") return;
    const feed = watch.call(store, namespace, { batchSize: LIVE_BATCH_SIZE });
    // Set when the feed is ended here (the client left, or closeAll): any other end is the store's.
    let stopped = false;
    const end = () => {
      stopped = true;
      feed.close();
    };
    this.#open.add(end);
    res.on("close", end);
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      "Content-Type": "text/event-stream; charset=utf-8",
      Connection: "keep-alive",
    });
    res.write(": statelog live feed\n\n");
    // Backpressure: once the response buffers past its high-water mark (a client that reads slowly or
    // not at all), stop taking events from the feed until it drains or the client leaves.
    const write = (event: string, data: unknown): boolean =>
      res.destroyed || res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    const send = async (event: string, data: unknown): Promise<void> => {
      if (write(event, data)) return;
      await new Promise<void>((resolve) => {
        const done = () => {
          res.off("drain", done);
          res.off("close", done);
          resolve();
        };
        res.on("drain", done);
        res.on("close", done);
      });
    };
    const keepalive = setInterval(() => {
      if (res.writableLength === 0) res.write(": keepalive\n\n");
    }, KEEPALIVE_MS);
    keepalive.unref();
    let live = false;
    try {
      for await (const event of feed) {
        if (event.type === "caught-up") {
          live = true;
          await send("caught-up", { position: event.position, epoch: event.epoch });
        } else if (live) {
          await send("change", changeView(event.change, event.position));
        }
      }
      // A feed ends by itself when its store closes: tell the page, which would otherwise reconnect in vain.
      if (!stopped)
        write("feed-error", { code: ErrorCode.Closed, message: "the store was closed: the live feed ended" });
    } catch (error) {
      write("feed-error", { code: isStatelogError(error) ? error.code : undefined, message: messageOf(error) });
    } finally {
      clearInterval(keepalive);
      this.#open.delete(end);
      feed.close();
      res.end();
    }
  }

  /** Ends every open feed. */
  closeAll(): void {
    for (const end of [...this.#open]) end();
  }
}
