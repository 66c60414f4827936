/**
 * The inspector's security model at the HTTP level (docs/inspector.md,
 * "Security"): the access token, the Host check against DNS rebinding,
 * no CORS, writes only as a same-origin JSON POST with the token and
 * `allowWrites`, and the headers of every response.
 */
import { readdir, readFile } from "node:fs/promises";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Inspector } from "../../src/inspector/index.js";
import { type Fixture, openFixture } from "./fixtures.js";
import { raw } from "./http.js";

/** The page's files, as the build copies them into the package. */
const ASSETS = new URL("../../src/inspector/assets/", import.meta.url);

let fx: Fixture;
const opened: Inspector[] = [];

async function open(options: { allowWrites?: boolean } = {}): Promise<Inspector> {
  const inspector = await Inspector.open({ targets: fx.targets, ...options });
  opened.push(inspector);
  return inspector;
}

const base = (i: Inspector) => `http://127.0.0.1:${i.port}`;
const bearer = (i: Inspector) => ({ Authorization: `Bearer ${i.token}` });
const cookieFor = (i: Inspector) => ({ Cookie: `statelog_inspector_${i.port}=${i.token}` });

beforeAll(async () => {
  fx = await openFixture();
});

afterEach(async () => {
  await Promise.all(opened.splice(0).map((i) => i.close()));
});

afterAll(async () => {
  await fx.close();
});

describe("access token", () => {
  it("is random per inspector (32 bytes, base64url) and is part of the URL", async () => {
    const [a, b] = [await open(), await open()];
    expect(a.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(b.token).not.toBe(a.token);
    expect(a.url).toBe(`http://127.0.0.1:${a.port}/?token=${a.token}`);
  });

  it("is required for the page, its assets and the API", async () => {
    const i = await open();
    for (const path of [
      "/",
      "/assets/app.js",
      "/assets/style.css",
      "/api/overview",
      "/api/entities?target=0&namespace=acme",
    ]) {
      const r = await fetch(`${base(i)}${path}`, { redirect: "manual" });
      expect(r.status, path).toBe(401);
      const text = await r.text();
      expect(text, path).not.toContain("alice");
      expect(text, path).toMatch(/access token/);
    }
  });

  it("a wrong token (in the URL, a cookie or a header) is refused", async () => {
    const i = await open();
    const other = await open();
    expect((await fetch(`${base(i)}/?token=${other.token}`, { redirect: "manual" })).status).toBe(401);
    expect((await fetch(`${base(i)}/?token=`, { redirect: "manual" })).status).toBe(401);
    expect((await fetch(`${base(i)}/api/overview`, { headers: bearer(other) })).status).toBe(401);
    const wrongCookie = { Cookie: `statelog_inspector_${i.port}=${other.token}` };
    expect((await fetch(`${base(i)}/api/overview`, { headers: wrongCookie })).status).toBe(401);
    // The right token under another inspector's cookie name (another port) is not this inspector's cookie.
    const otherPort = { Cookie: `statelog_inspector_${other.port}=${i.token}` };
    expect((await fetch(`${base(i)}/api/overview`, { headers: otherPort })).status).toBe(401);
  });

  it("the URL's token is moved into an HttpOnly SameSite=Strict cookie, then dropped from the address", async () => {
    const i = await open();
    const r = await fetch(i.url, { redirect: "manual" });
    expect(r.status).toBe(303);
    expect(r.headers.get("location")).toBe("/");
    const cookie = r.headers.get("set-cookie") ?? "";
    expect(cookie).toContain(`statelog_inspector_${i.port}=${i.token}`);
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    const page = await fetch(`${base(i)}/`, { headers: { Cookie: cookie.split(";")[0] as string } });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("statelog inspector");
  });

  it("the cookie or an Authorization: Bearer header opens the API", async () => {
    const i = await open();
    for (const headers of [cookieFor(i), bearer(i)]) {
      const r = await fetch(`${base(i)}/api/namespaces?target=0`, { headers });
      expect(r.status).toBe(200);
      expect(await r.json()).toEqual({ namespaces: ["acme", "globex"] });
    }
  });

  it("a cookie of the same name planted by another local page (sent first: a longer path) locks nobody out", async () => {
    const i = await open();
    const name = `statelog_inspector_${i.port}`;
    const r = await fetch(`${base(i)}/api/namespaces?target=0`, {
      headers: { Cookie: `${name}=planted; ${name}=${i.token}` },
    });
    expect(r.status).toBe(200);
    // Without the right token among them, still refused.
    const wrong = await fetch(`${base(i)}/api/namespaces?target=0`, { headers: { Cookie: `${name}=a; ${name}=b` } });
    expect(wrong.status).toBe(401);
  });
});

describe("Host check (DNS rebinding)", () => {
  it("refuses a Host that is not this server, even with the token", async () => {
    const i = await open();
    for (const host of [
      `evil.example:${i.port}`,
      "evil.example",
      `127.0.0.1:${i.port + 1}`,
      `localhost.evil.example:${i.port}`,
    ]) {
      const r = await raw(i.port, "/api/overview", { headers: { Host: host, ...bearer(i) } });
      expect(r.status, host).toBe(403);
      expect(r.body, host).not.toContain("memory:");
    }
    const page = await raw(i.port, `/?token=${i.token}`, { headers: { Host: `rebound.example:${i.port}` } });
    expect(page.status).toBe(403);
    expect(page.headers["set-cookie"]).toBeUndefined();
  });

  it("accepts 127.0.0.1, localhost and [::1] with the port", async () => {
    const i = await open();
    for (const host of [`127.0.0.1:${i.port}`, `localhost:${i.port}`, `LOCALHOST:${i.port}`, `[::1]:${i.port}`]) {
      const r = await raw(i.port, "/api/overview", { headers: { Host: host, ...bearer(i) } });
      expect(r.status, host).toBe(200);
    }
  });
});

describe("printed URL", () => {
  it("names the address bound, not localhost (which binds one loopback family: another program could take the other)", async () => {
    const i = await Inspector.open({ targets: fx.targets, host: "localhost" });
    opened.push(i);
    const { hostname, port } = new URL(i.url);
    expect(["127.0.0.1", "[::1]"]).toContain(hostname);
    expect(Number(port)).toBe(i.port);
    // The printed URL reaches this inspector: the token is taken into a cookie.
    const r = await fetch(i.url, { redirect: "manual" });
    expect(r.status).toBe(303);
    expect(r.headers.get("set-cookie")).toContain(i.token);
  });
});

describe("printed URL of an IPv6 address", () => {
  it("is in the canonical form a browser sends back in Host, which the Host check accepts", async () => {
    for (const [host, printed] of [
      ["::ffff:127.0.0.1", "[::ffff:7f00:1]"],
      ["0:0:0:0:0:0:0:1", "[::1]"],
    ] as const) {
      const i = await Inspector.open({ targets: fx.targets, host });
      opened.push(i);
      // fetch, like a browser, sends the URL's host in canonical form.
      const r = await fetch(i.url, { redirect: "manual" });
      expect(r.status, host).toBe(303);
      expect(i.url, host).toContain(`//${printed}:${i.port}/`);
    }
    // The address as given is accepted too (a tool may send it as typed).
    const mapped = opened[0] as Inspector;
    const typed = await raw(mapped.port, "/api/overview", {
      headers: { Host: `[::ffff:127.0.0.1]:${mapped.port}`, ...bearer(mapped) },
    });
    expect(typed.status).toBe(200);
  });
});

describe("no CORS", () => {
  it("never sends an Access-Control header, and refuses preflights", async () => {
    const i = await open({ allowWrites: true });
    const origin = { Origin: "http://evil.example" };
    const responses = [
      await raw(i.port, "/api/overview", { headers: { ...origin, ...bearer(i) } }),
      await raw(i.port, "/", { headers: { ...origin, ...bearer(i) } }),
      await raw(i.port, "/api/overview", { headers: origin }),
      await raw(i.port, "/api/compact", {
        method: "OPTIONS",
        headers: {
          ...origin,
          "Access-Control-Request-Method": "POST",
          "Access-Control-Request-Headers": "content-type",
        },
      }),
      await raw(i.port, "/api/compact", {
        method: "OPTIONS",
        headers: { ...origin, ...bearer(i), "Access-Control-Request-Method": "POST" },
      }),
    ];
    for (const r of responses) {
      expect(Object.keys(r.headers).filter((h) => h.startsWith("access-control-"))).toEqual([]);
    }
    expect(responses[3]?.status).toBe(405);
    expect(responses[4]?.status).toBe(405);
  });
});

describe("writes", () => {
  const compactBody = JSON.stringify({ target: 1, namespace: "shop" });
  const sameOrigin = (i: Inspector) => ({ Origin: base(i), "Content-Type": "application/json" });
  const invoiceHistory = async (i: Inspector) => {
    const r = await fetch(`${base(i)}/api/history?target=1&namespace=shop&entityType=invoice&entityId=inv-7`, {
      headers: bearer(i),
    });
    return ((await r.json()) as { changes: unknown[] }).changes.length;
  };

  it("are refused by a read-only inspector (the default), even from the page with the token", async () => {
    const i = await open();
    const r = await raw(i.port, "/api/compact", {
      method: "POST",
      headers: { ...sameOrigin(i), ...bearer(i), "Sec-Fetch-Site": "same-origin" },
      body: compactBody,
    });
    expect(r.status).toBe(403);
    expect(r.body).toMatch(/read-only/);
    expect(await invoiceHistory(i)).toBe(3);
  });

  it("need the token, a same-origin Origin (or Sec-Fetch-Site) and a JSON body", async () => {
    const i = await open({ allowWrites: true });
    const post = (headers: Record<string, string>, body = compactBody) =>
      raw(i.port, "/api/compact", { method: "POST", headers, body });
    const refused: [string, Record<string, string>, number][] = [
      ["no token", sameOrigin(i), 401],
      ["another origin", { ...bearer(i), Origin: "http://evil.example", "Content-Type": "application/json" }, 403],
      [
        "another port",
        { ...bearer(i), Origin: `http://127.0.0.1:${i.port + 1}`, "Content-Type": "application/json" },
        403,
      ],
      ["no Origin, no Sec-Fetch-Site", { ...bearer(i), "Content-Type": "application/json" }, 403],
      ["cross-site fetch", { ...bearer(i), "Sec-Fetch-Site": "cross-site", "Content-Type": "application/json" }, 403],
      ["same-site (another port)", { ...sameOrigin(i), ...bearer(i), "Sec-Fetch-Site": "same-site" }, 403],
      ["a form post", { ...bearer(i), Origin: base(i), "Content-Type": "application/x-www-form-urlencoded" }, 403],
      ["text/plain", { ...bearer(i), Origin: base(i), "Content-Type": "text/plain" }, 403],
    ];
    for (const [what, headers, status] of refused) {
      expect((await post(headers)).status, what).toBe(status);
    }
    const viaGet = await fetch(`${base(i)}/api/compact?target=1&namespace=shop`, { headers: bearer(i) });
    expect(viaGet.status).toBe(404);
    expect(await invoiceHistory(i)).toBe(3);

    const ok = await post({ ...sameOrigin(i), ...bearer(i) });
    expect(ok.status).toBe(200);
    expect(await invoiceHistory(i)).toBe(1);
    // Compaction kept the data.
    const shop = await fx.file.load("shop", { liveOnly: true });
    expect(shop.map((c) => [c.entityId, c.entity])).toEqual([
      ["inv-7", { status: "paid", amount: 120 }],
      ["c-1", { name: "Zoe" }],
    ]);
  });

  it("accept Sec-Fetch-Site: same-origin when the browser sends no Origin", async () => {
    const i = await open({ allowWrites: true });
    const r = await raw(i.port, "/api/compact", {
      method: "POST",
      headers: { ...bearer(i), "Sec-Fetch-Site": "same-origin", "Content-Type": "application/json" },
      body: JSON.stringify({ target: 0, namespace: "acme" }),
    });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toEqual({ compacted: "acme" });
  });

  it("refuse a bad body or namespace with a clear error", async () => {
    const i = await open({ allowWrites: true });
    const post = (body: string) =>
      raw(i.port, "/api/compact", { method: "POST", headers: { ...sameOrigin(i), ...bearer(i) }, body });
    expect((await post("not json")).status).toBe(400);
    expect((await post("[]")).status).toBe(400);
    expect((await post("x".repeat(5000))).status).toBe(413);
    const badName = await post(JSON.stringify({ target: 0, namespace: "a/b" }));
    expect(badName.status).toBe(400);
    expect(JSON.parse(badName.body).error.code).toBe("STATELOG_INVALID_NAME");
    const badTarget = await post(JSON.stringify({ target: 9, namespace: "acme" }));
    expect(badTarget.status).toBe(400);
  });
});

describe("response headers and page", () => {
  it("every response has a strict CSP, nosniff, no-referrer and no-store", async () => {
    const i = await open();
    for (const [path, headers] of [
      ["/", bearer(i)],
      ["/assets/app.js", bearer(i)],
      ["/api/overview", bearer(i)],
      ["/api/overview", {}],
      ["/nowhere", bearer(i)],
    ] as const) {
      const r = await fetch(`${base(i)}${path}`, { headers });
      const csp = r.headers.get("content-security-policy") ?? "";
      expect(csp, path).toContain("default-src 'none'");
      expect(csp, path).toContain("script-src 'self'");
      expect(csp, path).toContain("frame-ancestors 'none'");
      expect(csp, path).not.toContain("unsafe-inline");
      expect(csp, path).not.toContain("unsafe-eval");
      expect(r.headers.get("x-content-type-options"), path).toBe("nosniff");
      expect(r.headers.get("referrer-policy"), path).toBe("no-referrer");
      expect(r.headers.get("cache-control"), path).toBe("no-store");
    }
  });

  it("the page has no inline script, and its script never writes markup", async () => {
    const i = await open();
    const html = await (await fetch(`${base(i)}/`, { headers: bearer(i) })).text();
    const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
    expect(scripts.length).toBe(1);
    for (const [, attrs, body] of scripts) {
      expect(attrs).toMatch(/src="\/assets\/app\.js"/);
      expect(body?.trim()).toBe("");
    }
    expect(html).not.toMatch(/\son[a-z]+=/i);
    const modules = (await readdir(ASSETS)).filter((f) => f.endsWith(".js"));
    expect(modules).toContain("app.js");
    for (const file of modules) {
      const r = await fetch(`${base(i)}/assets/${file}`, { headers: bearer(i) });
      expect(r.status, file).toBe(200);
      expect(r.headers.get("content-type"), file).toBe("text/javascript; charset=utf-8");
      const js = await r.text();
      expect(js, file).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function/);
    }
  });

  it("entity values reach the API as JSON data, not markup", async () => {
    const i = await open();
    const r = await fetch(`${base(i)}/api/entities?target=0&namespace=acme&q=order`, { headers: bearer(i) });
    expect(r.headers.get("content-type")).toBe("application/json; charset=utf-8");
    const body = (await r.json()) as { items: { entity: { note: string } }[] };
    expect(body.items[0]?.entity.note).toContain("<script>");
  });

  it("every file of the assets folder, which the build copies into the package, is served", async () => {
    const pkg = JSON.parse(await readFile(new URL("../../package.json", import.meta.url), "utf8"));
    expect(pkg.scripts.build).toContain("cpSync('src/inspector/assets','dist/inspector/assets'");
    const i = await open();
    for (const file of await readdir(ASSETS)) {
      const path = file === "index.html" ? "/" : `/assets/${file}`;
      const served = await (await fetch(`${base(i)}${path}`, { headers: bearer(i) })).text();
      expect(served, file).toBe(await readFile(new URL(file, ASSETS), "utf8"));
    }
  });
});
