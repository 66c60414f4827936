/**
 * The event-store and read-model commands of `statelog`: `streams`,
 * `read`, `subscribe` (event-store URLs) and `status` (read-model URLs).
 */
import type { Command } from "commander";
import type { RecordedEvent } from "../events/index.js";
import { ConfigurationError, isNotFoundError, NotFoundError } from "../index.js";
import type { ProjectionStatusRecord } from "../read-models/index.js";
import { untilCaughtUp } from "./caught-up.js";
import {
  type CommonFlags,
  interruptible,
  nonNegativeInt,
  openEvents,
  openReadModels,
  positiveInt,
  withJson,
} from "./command.js";
import { ExitCode, errorJson, formatError } from "./errors.js";
import { clip, printJson, printTable } from "./output.js";

/** An event as the command prints it (one JSON line). */
export function eventJson(e: RecordedEvent): Record<string, unknown> {
  return {
    streamId: e.streamId,
    position: e.position,
    globalPosition: e.globalPosition,
    id: e.id,
    type: e.type,
    timestamp: e.timestamp.toISOString(),
    data: e.data,
    ...(e.metadata === undefined ? {} : { metadata: e.metadata }),
  };
}

function statusJson(s: ProjectionStatusRecord): Record<string, unknown> {
  return {
    name: s.name,
    status: s.status,
    checkpoint: s.checkpoint,
    updatedAt: s.updatedAt.toISOString(),
    ...(s.lagEvents === undefined ? {} : { lagEvents: s.lagEvents }),
    ...(s.lagMs === undefined ? {} : { lagMs: s.lagMs }),
    ...(s.lastError === undefined ? {} : { lastError: s.lastError }),
    ...(s.failedPosition === undefined ? {} : { failedPosition: s.failedPosition }),
  };
}

function printEvents(events: readonly RecordedEvent[], json: boolean, table: boolean): void {
  if (table) {
    printTable(
      ["stream", "position", "global", "type", "timestamp", "data"],
      events.map((e) => [
        e.streamId,
        e.position,
        e.globalPosition,
        e.type,
        e.timestamp.toISOString(),
        clip(JSON.stringify(e.data)),
      ]),
    );
  } else if (json) printJson(events.map(eventJson));
  else if (events.length > 0) process.stdout.write(`${events.map((e) => JSON.stringify(eventJson(e))).join("\n")}\n`);
}

export function addEventCommands(program: Command): void {
  withJson(
    program
      .command("streams")
      .description("list the streams of an event store with their event counts and positions")
      .argument("<events>", "the event store URL (file+events:./dir, nats+events://host/stream, memory+events:)")
      .option("--prefix <prefix>", "only streams whose id starts with this"),
  ).action(async (url: string, opts: CommonFlags & { prefix?: string }) => {
    await using target = await openEvents(url, "streams");
    const streams = (await target.eventStore.getStreams())
      .filter((s) => opts.prefix === undefined || s.streamId.startsWith(opts.prefix))
      .sort((a, b) => (a.streamId < b.streamId ? -1 : a.streamId > b.streamId ? 1 : 0));
    // Stream infos are plain data: JSON carries their dates as ISO strings.
    if (opts.json) printJson(streams);
    else
      printTable(
        ["stream", "events", "first", "last", "lastEvent"],
        streams.map((s) => [
          s.streamId,
          s.eventCount,
          s.firstPosition,
          s.lastPosition,
          s.lastEvent?.toISOString() ?? "",
        ]),
      );
  });

  withJson(
    program
      .command("read")
      .description("print the events of a stream, one JSON event per line")
      .argument("<events>", "the event store URL")
      .argument("<stream>", "the stream id")
      .option("--from <position>", "start after this stream position", nonNegativeInt, 0)
      .option("--limit <n>", "at most this many events", positiveInt)
      .option("--format <format>", "jsonl or table", "jsonl"),
  ).action(
    async (url: string, stream: string, opts: CommonFlags & { from: number; limit?: number; format: string }) => {
      if (opts.format !== "jsonl" && opts.format !== "table") {
        throw new ConfigurationError(`--format must be "jsonl" or "table", got ${JSON.stringify(opts.format)}`);
      }
      await using target = await openEvents(url, "read");
      const events =
        opts.limit === undefined
          ? await target.eventStore.readStream(stream, opts.from)
          : (await target.eventStore.read(stream, opts.from, opts.limit)).events;
      printEvents(events, opts.json === true, opts.format === "table");
    },
  );

  withJson(
    program
      .command("subscribe")
      .description(
        "print the events of a stream (or of every stream) from a position, then live ones as they are appended",
      )
      .argument("<events>", "the event store URL")
      .argument("[stream]", "the stream id (default: every stream, in global order)")
      .option(
        "--from <position>",
        "start after this position (stream position, or global with no stream)",
        nonNegativeInt,
        0,
      )
      .option("--no-follow", "stop once the events stored when it started are printed"),
  ).action(async (url: string, stream: string | undefined, opts: CommonFlags & { from: number; follow: boolean }) => {
    const run = interruptible();
    try {
      await using target = await openEvents(url, "subscribe");
      const store = target.eventStore;
      let head: number;
      if (stream === undefined) head = store.stats().globalPosition;
      else {
        // A stream not there yet: followed, it is waited for; without --follow it is not found, as for `read`.
        head = await store.getStreamInfo(stream).then(
          (info) => info.lastPosition,
          (error: unknown) => {
            if (isNotFoundError(error) && opts.follow) return 0;
            throw error;
          },
        );
      }
      if (!opts.follow && head <= opts.from) return;
      const subscription =
        stream === undefined
          ? store.subscribeAll(opts.from, { signal: run.signal })
          : store.subscribe(stream, opts.from, { signal: run.signal });
      if (opts.follow) {
        subscription.caughtUp.then((live) => {
          if (live && !opts.json) console.error("statelog: caught up (following: Ctrl-C to stop)");
        });
      }
      const positionOf = (event: RecordedEvent) => (stream === undefined ? event.globalPosition : event.position);
      // Without --follow: up to the head, or to the last event still stored (retention may have removed the rest).
      const events = opts.follow ? subscription : untilCaughtUp(subscription, (event) => positionOf(event) >= head);
      for await (const event of events) process.stdout.write(`${JSON.stringify(eventJson(event))}\n`);
    } finally {
      run.dispose();
    }
  });

  withJson(
    program
      .command("status")
      .description("the status of projections: checkpoint, lag, last error (from their read-model store)")
      .argument("<models>", "the read-model store URL (file+models:./dir, nats+models://host/bucket, memory+models:)")
      .argument("<projections...>", "the projection names"),
  ).action(async (url: string, names: string[], opts: CommonFlags) => {
    await using target = await openReadModels(url, "status");
    const found: ProjectionStatusRecord[] = [];
    const missing: string[] = [];
    for (const name of names) {
      const status = await target.readModels.getProjectionStatus(name);
      if (status) found.push(status);
      else missing.push(name);
    }
    if (opts.json) printJson(found.map(statusJson));
    else
      printTable(
        ["projection", "status", "checkpoint", "lagEvents", "lagMs", "updatedAt", "lastError"],
        found.map((s) => [
          s.name,
          s.status,
          s.checkpoint,
          s.lagEvents ?? "",
          s.lagMs ?? "",
          s.updatedAt.toISOString(),
          clip(s.lastError ?? "", 40),
        ]),
      );
    if (missing.length > 0) {
      for (const name of missing) {
        const error = new NotFoundError("projection", name);
        console.error(opts.json ? errorJson(error) : `statelog: ${formatError(error)}`);
      }
      process.exitCode = ExitCode.NotFound;
    }
  });
}
