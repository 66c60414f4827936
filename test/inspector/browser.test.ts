/**
 * The inspector in a real browser: playwright-core drives Debian's
 * chromium against real stores (memory, a FileStore in a temp directory,
 * memory and file event stores, memory and file read-model stores) and
 * checks what a user sees: namespaces, entities and search, history,
 * streams and their timeline, projections and their lag chart, a live
 * change arriving after a save, the token being required, and that
 * entity data never runs as markup.
 *
 * With STATELOG_UPDATE_SCREENSHOT=1 it writes docs/images/inspector.png.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { type ClientRequest, request } from "node:http";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Store } from "../../src/index.js";
import { INSPECTOR_DEFAULTS, Inspector } from "../../src/inspector/index.js";
import { MemoryStore } from "../../src/memory/index.js";
import { type Fixture, openFixture } from "./fixtures.js";

const CHROMIUM = "/usr/bin/chromium";
/** How long the page may take to show something (the test machine may be busy). */
const UI_TIMEOUT = 20_000;
/** `expect.poll` with the page's timeout. */
const poll = <T>(fn: () => Promise<T> | T) => expect.poll(fn, { timeout: UI_TIMEOUT });

let fx: Fixture;
let browser: Browser;
let inspector: Inspector;
const contexts: BrowserContext[] = [];
/** Script errors and CSP violations seen by any page. */
const problems: string[] = [];

async function newPage(): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  contexts.push(context);
  const page = await context.newPage();
  page.setDefaultTimeout(UI_TIMEOUT);
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" && !/Failed to load resource/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  return page;
}

/** Opens the inspector's URL (with its token) and waits for the first namespace's entities. */
async function openInspector(url = inspector.url): Promise<Page> {
  const page = await newPage();
  await page.goto(url);
  await page.getByTestId("namespaces").getByRole("button").first().waitFor();
  return page;
}

const rows = (page: Page) => page.getByTestId("entities").locator("tbody tr");

beforeAll(async () => {
  fx = await openFixture();
  inspector = await Inspector.open({ targets: fx.targets, lagSampleIntervalMs: 50 });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
}, 60_000);

afterEach(async () => {
  await Promise.all(contexts.splice(0).map((c) => c.close()));
  expect(problems.splice(0)).toEqual([]);
});

afterAll(async () => {
  await browser?.close();
  await inspector?.close();
  await fx?.close();
});

describe("inspector in chromium", { timeout: 120_000 }, () => {
  it("requires the access token", async () => {
    const page = await newPage();
    for (const url of [
      `http://127.0.0.1:${inspector.port}/`,
      `http://127.0.0.1:${inspector.port}/?token=${"x".repeat(43)}`,
    ]) {
      const response = await page.goto(url);
      expect(response?.status()).toBe(401);
      await poll(() => page.locator("body").textContent()).toContain("needs its access token");
      expect(await page.getByTestId("entities").count()).toBe(0);
    }
    // With the token the page opens, and the address bar no longer shows it.
    await page.goto(inspector.url);
    await page.getByTestId("namespaces").getByRole("button").first().waitFor();
    expect(page.url()).toBe(`http://127.0.0.1:${inspector.port}/`);
    // The cookie now opens the page without the token.
    await page.goto(`http://127.0.0.1:${inspector.port}/`);
    await poll(() => page.getByTestId("mode").textContent()).toBe("read-only");
  });

  it("shows namespaces and their entities, with search; entity values are text", async () => {
    const page = await openInspector();
    await expect
      .poll(() => page.getByTestId("namespaces").getByRole("button").allTextContents())
      .toEqual(["acme", "globex"]);
    await poll(() => page.getByTestId("ns-title").textContent()).toBe("acme");
    await poll(() => rows(page).count()).toBe(3);
    const cells = await rows(page).locator("td:nth-child(2)").allTextContents();
    expect(cells.sort()).toEqual(["alice", "bob", "o-1"]);
    expect(await page.getByTestId("count").textContent()).toBe("1–3 of 3 entities");

    // The hostile value is shown as its text, and nothing of it ran or became an element.
    const order = rows(page).filter({ hasText: "o-1" });
    expect(await order.locator("td.value").textContent()).toContain("<script>window.__pwned=2</script>");
    expect(await page.locator("#entities img, #entities script").count()).toBe(0);
    await order.click();
    await expect
      .poll(() => page.getByTestId("detail-value").textContent())
      .toContain("<script>window.__pwned=2</script>");
    expect(await page.evaluate(() => (globalThis as { __pwned?: number }).__pwned)).toBeUndefined();

    await page.getByTestId("search").fill("ali");
    await poll(() => rows(page).locator("td:nth-child(2)").allTextContents()).toEqual(["alice"]);
    await page.getByTestId("search").fill("admin"); // matches inside the value
    await poll(() => rows(page).locator("td:nth-child(2)").allTextContents()).toEqual(["alice"]);
    await page.getByTestId("search").fill("");
    await page.getByTestId("type-filter").selectOption("order");
    await poll(() => rows(page).locator("td:nth-child(2)").allTextContents()).toEqual(["o-1"]);
    await page.getByTestId("type-filter").selectOption("");
    await page.getByTestId("show-deleted").check();
    await poll(() => rows(page).count()).toBe(4);
    expect(await rows(page).filter({ hasText: "carol" }).locator("td.value").textContent()).toBe("(deleted)");

    await page.getByTestId("ns-filter").fill("glob");
    await poll(() => page.getByTestId("namespaces").getByRole("button").allTextContents()).toEqual(["globex"]);
    await page.getByTestId("namespaces").getByRole("button", { name: "globex" }).click();
    await poll(() => rows(page).locator("td:nth-child(2)").allTextContents()).toEqual(["dave"]);
  });

  it("shows an entity's history where the store keeps it, and says so where it does not", async () => {
    const page = await openInspector();
    await rows(page).filter({ hasText: "alice" }).click();
    await poll(() => page.getByTestId("history-note").textContent()).toContain("only the latest change");
    expect(await page.getByTestId("history").locator("li").count()).toBe(1);

    await page.getByTestId("target").selectOption({ index: 1 });
    await poll(() => page.getByTestId("ns-title").textContent()).toBe("shop");
    await rows(page).filter({ hasText: "inv-7" }).click();
    await poll(() => page.getByTestId("history").locator("li").count()).toBe(3);
    const history = await page.getByTestId("history").locator("li code").allTextContents();
    expect(history.map((h) => JSON.parse(h).status)).toEqual(["draft", "sent", "paid"]);
    expect(await page.getByTestId("history-note").textContent()).toContain("3 changes held by the store");
  });

  it("shows a live change after a save (memory store and file store)", async () => {
    const page = await openInspector();
    await poll(() => page.getByTestId("live-state").textContent()).toBe("live");
    await fx.memory.save([
      { namespace: "acme", changeType: "set", entityType: "user", entityId: "erin", entity: { name: "Erin <b>" } },
    ]);
    const live = page.getByTestId("live").locator("li");
    await poll(() => live.first().textContent()).toContain("user/erin");
    expect(await live.first().textContent()).toContain('{"name":"Erin <b>"}');
    await poll(() => rows(page).filter({ hasText: "erin" }).count()).toBe(1);

    await page.getByTestId("target").selectOption({ index: 1 });
    await poll(() => page.getByTestId("ns-title").textContent()).toBe("shop");
    await poll(() => page.getByTestId("live-state").textContent()).toBe("live");
    await fx.file.save([{ namespace: "shop", changeType: "unset", entityType: "customer", entityId: "c-1" }]);
    await poll(() => live.first().textContent()).toContain("customer/c-1");
    expect(await live.first().locator(".op").textContent()).toBe("unset");
    await poll(() => rows(page).filter({ hasText: "c-1" }).count()).toBe(0);
    await fx.file.save([
      { namespace: "shop", changeType: "set", entityType: "customer", entityId: "c-1", entity: { name: "Zoe" } },
    ]);
    await poll(() => rows(page).filter({ hasText: "c-1" }).count()).toBe(1);
  });

  it("says why the live feed is not available: refused (too many open) or ended (the store closed)", async () => {
    const store = await MemoryStore.open();
    await store.save([{ namespace: "ns", changeType: "set", entityType: "t", entityId: "a", entity: {} }]);
    const other = await Inspector.open({ targets: [{ name: "m", store }] });
    // Every live feed the inspector allows, held open by another client.
    const held: ClientRequest[] = [];
    try {
      for (let i = 0; i < INSPECTOR_DEFAULTS.maxLiveFeeds; i++) {
        await new Promise<void>((resolve, reject) => {
          const req = request(
            {
              host: "127.0.0.1",
              port: other.port,
              path: "/api/live?target=0&namespace=ns",
              headers: { Authorization: `Bearer ${other.token}` },
            },
            (res) => res.once("data", () => resolve()),
          );
          req.on("error", reject);
          held.push(req);
          req.end();
        });
      }
      const page = await newPage();
      await page.goto(other.url);
      await poll(() => rows(page).locator("td:nth-child(2)").allTextContents()).toEqual(["a"]);
      await poll(() => page.getByTestId("live-state").textContent()).toBe("not available");
      await poll(() => page.getByTestId("error").textContent()).toContain("too many live feeds are open");
      for (const req of held.splice(0)) req.destroy();

      // Open the namespace again (the feeds are free now), then close its store.
      await page.getByTestId("namespaces").getByRole("button", { name: "ns" }).click();
      await poll(() => page.getByTestId("live-state").textContent()).toBe("live");
      await store.close();
      await poll(() => page.getByTestId("live-state").textContent()).not.toBe("live");
      expect(["stopped", "not available"]).toContain(await page.getByTestId("live-state").textContent());
      await poll(() => page.getByTestId("error").textContent()).toMatch(/closed/);
    } finally {
      for (const req of held) req.destroy();
      await other.close();
      await store.close();
    }
  });

  it("keeps the entity on show current: a live change or deletion of it updates its value and history", async () => {
    const store = await MemoryStore.open();
    const alice = { namespace: "ns", entityType: "user", entityId: "alice" } as const;
    await store.save([{ ...alice, changeType: "set", entity: { role: "admin" } }]);
    const other = await Inspector.open({ targets: [{ name: "m", store }] });
    try {
      const page = await newPage();
      await page.goto(other.url);
      await poll(() => page.getByTestId("live-state").textContent()).toBe("live");
      await rows(page).filter({ hasText: "alice" }).click();
      await poll(() => page.getByTestId("detail-value").textContent()).toContain('"admin"');
      await store.save([{ ...alice, changeType: "set", entity: { role: "guest" } }]);
      await poll(() => page.getByTestId("detail-value").textContent()).toContain('"guest"');
      await poll(() => page.getByTestId("history").textContent()).toContain('"guest"');
      await store.save([{ ...alice, changeType: "unset" }]);
      await poll(() => page.getByTestId("detail-value").textContent()).toBe("(deleted)");
      await poll(() => page.getByTestId("history").locator("li .op").allTextContents()).toEqual(["unset"]);
    } finally {
      await other.close();
      await store.close();
    }
  });

  it("shows bidi controls and invisible characters in names as escapes: no name passes for another", async () => {
    const store = await MemoryStore.open();
    await store.save(
      ["\u202Efdp.exe", "exe.pdf", "ad\u200Bmin"].map((entityId) => ({
        namespace: "ns",
        changeType: "set" as const,
        entityType: "file",
        entityId,
        entity: { name: entityId },
      })),
    );
    const other = await Inspector.open({ targets: [{ name: "m", store }] });
    try {
      const page = await newPage();
      await page.goto(other.url);
      await poll(() => rows(page).locator("td:nth-child(2)").allTextContents()).toEqual([
        "ad\\u200Bmin",
        "exe.pdf",
        "\\u202Efdp.exe",
      ]);
      await rows(page).filter({ hasText: "fdp.exe" }).click();
      await poll(() => page.getByTestId("detail-title").textContent()).toBe("file / \\u202Efdp.exe");
      expect(await page.getByTestId("detail-value").textContent()).toContain('"\\u202Efdp.exe"');
    } finally {
      await other.close();
      await store.close();
    }
  });

  it("shows event streams with their events and a timeline", async () => {
    const page = await openInspector();
    await page.getByTestId("tab-streams").click();
    await expect
      .poll(() => page.getByTestId("streams").getByRole("button").allTextContents())
      .toEqual(["order-1 3", "order-2 1"]);
    await poll(() => page.getByTestId("events").locator("tbody tr").count()).toBe(3);
    const types = await page.getByTestId("events").locator("tbody tr td:nth-child(3)").allTextContents();
    expect(types).toEqual(["order.placed", "order.paid", "order.shipped"]);
    expect(await page.getByTestId("events").locator("tbody tr").last().textContent()).toContain("<script>");
    expect(await page.getByTestId("timeline").locator("circle").count()).toBe(3);
    expect(await page.getByTestId("stream-stats").textContent()).toContain("2 streams, 4 events");

    await page
      .getByTestId("streams")
      .getByRole("button", { name: /order-2/ })
      .click();
    await poll(() => page.getByTestId("events").locator("tbody tr").count()).toBe(1);
    expect(await page.getByTestId("timeline").locator("circle").count()).toBe(1);

    await page.getByTestId("target").selectOption({ index: 1 });
    await poll(() => page.getByTestId("streams").getByRole("button").allTextContents()).toEqual(["audit 2"]);
    await expect
      .poll(() => page.getByTestId("events").locator("tbody tr td:nth-child(3)").allTextContents())
      .toEqual(["login", "logout"]);
  });

  it("shows projections with their status and a lag chart", async () => {
    const page = await openInspector();
    await page.getByTestId("tab-projections").click();
    const card = page.getByTestId("projection-order-summary");
    await poll(() => card.locator(".badge").textContent()).toBe("catching_up");
    expect(await card.getByTestId("lag").textContent()).toBe("2 events");
    await poll(() => card.locator("polyline").count()).toBe(1);

    await fx.memoryModels.updateProjectionStatus({
      name: "order-summary",
      status: "up_to_date",
      checkpoint: 4,
      updatedAt: new Date(),
      lagEvents: 0,
    });
    await poll(() => card.locator(".badge").textContent()).toBe("up_to_date");
    expect(await card.getByTestId("lag").textContent()).toBe("0 events");
    const points = (await card.locator("polyline").getAttribute("points")) ?? "";
    expect(points.split(" ").length).toBeGreaterThan(1);

    await page.getByTestId("target").selectOption({ index: 1 });
    await expect
      .poll(() => page.getByTestId("projection-audit-log").locator(".badge").textContent())
      .toBe("up_to_date");
    // No lag was written: it is computed from the event store (2 events, checkpoint 2).
    expect(await page.getByTestId("projection-audit-log").getByTestId("lag").textContent()).toBe("0 events");
    expect(await page.getByTestId("projection-not-started").locator(".badge").textContent()).toBe("no status");
  });

  it("offers compact only when writes are allowed, and compacts from the page", async () => {
    const readOnly = await openInspector();
    expect(await readOnly.getByTestId("compact").isHidden()).toBe(true);

    const writable = await Inspector.open({ targets: fx.targets, allowWrites: true });
    try {
      const page = await openInspector(writable.url);
      expect(await page.getByTestId("mode").textContent()).toBe("writes allowed");
      await page.getByTestId("target").selectOption({ index: 1 });
      await poll(() => page.getByTestId("ns-title").textContent()).toBe("shop");
      await rows(page).filter({ hasText: "inv-7" }).click();
      await poll(() => page.getByTestId("history").locator("li").count()).toBeGreaterThan(1);
      // Asked first: declining leaves the namespace as it was.
      page.once("dialog", (dialog) => void dialog.dismiss());
      await page.getByTestId("compact").click();
      await rows(page).filter({ hasText: "inv-7" }).click();
      await poll(() => page.getByTestId("history-note").textContent()).toContain("changes held by the store");
      const before = await page.getByTestId("history").locator("li").count();
      expect(before).toBeGreaterThan(1);
      let asked = "";
      page.once("dialog", (dialog) => {
        asked = dialog.message();
        void dialog.accept();
      });
      await page.getByTestId("compact").click();
      await poll(() => asked).toContain("Compact namespace shop?");
      await poll(() => page.getByTestId("notice").textContent()).toBe("Compacted shop.");
      // The open entity's history is read again: only its latest change is left.
      await poll(() => page.getByTestId("history-note").textContent()).toContain("only the latest change");
      expect(await page.getByTestId("history").locator("li code").allTextContents()).toEqual([
        '{"status":"paid","amount":120}',
      ]);
      expect(await page.getByTestId("error").textContent()).toBe("");
    } finally {
      await writable.close();
    }
  });

  it("asks for a namespace when the store cannot list them", async () => {
    const plain: Store = {
      capabilities: { compact: false, listNamespaces: false, durable: false },
      load: (namespace, options) => fx.memory.load(namespace, options),
      save: (changes, options) => fx.memory.save(changes, options),
      close: async () => undefined,
      [Symbol.asyncDispose]: async () => undefined,
    };
    const other = await Inspector.open({ targets: [{ name: "plain", store: plain }] });
    try {
      const page = await newPage();
      await page.goto(other.url);
      await page.getByTestId("ns-name").fill("globex");
      await page.getByTestId("ns-open").getByRole("button", { name: "Open" }).click();
      await poll(() => rows(page).locator("td:nth-child(2)").allTextContents()).toEqual(["dave"]);
      expect(await page.getByTestId("live-state").textContent()).toBe("not available");
      await rows(page).first().click();
      await poll(() => page.getByTestId("history-note").textContent()).toContain("No history");
    } finally {
      await other.close();
    }
  });

  it("takes the documentation's screenshot (STATELOG_UPDATE_SCREENSHOT=1)", async () => {
    const page = await openInspector();
    await poll(() => page.getByTestId("live-state").textContent()).toBe("live");
    await fx.memory.save([
      {
        namespace: "acme",
        changeType: "set",
        entityType: "user",
        entityId: "frank",
        entity: { name: "Frank", role: "ops" },
      },
    ]);
    await poll(() => page.getByTestId("live").locator("li").first().textContent()).toContain("user/frank");
    await page.getByTestId("type-filter").selectOption("user");
    await poll(() => rows(page).count()).toBe(4);
    await rows(page).filter({ hasText: "alice" }).click();
    await poll(() => page.getByTestId("history").locator("li").count()).toBe(1);
    const png = await page.screenshot({ fullPage: true });
    expect(png.subarray(1, 4).toString("latin1")).toBe("PNG");
    if (process.env.STATELOG_UPDATE_SCREENSHOT === "1") {
      const dir = new URL("../../docs/images/", import.meta.url);
      await mkdir(dir, { recursive: true });
      await writeFile(new URL("inspector.png", dir), png);
    }
  });
});
