/**
 * A small tmpfs mounted by the test itself (needs root, which the tests
 * and CI run as): disk full (fill it), read-only storage (remount it
 * `ro`). Only mounts this module made are touched; each is unmounted
 * (lazily if busy) after the file's tests.
 */
import { execFileSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmdirSync, rmSync, writeSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll } from "vitest";

const mounted: string[] = [];

afterAll(() => {
  for (const dir of mounted.splice(0)) {
    try {
      execFileSync("umount", [dir]);
    } catch {
      execFileSync("umount", ["-l", dir]);
    }
    rmdirSync(dir);
  }
});

/** A mounted tmpfs of `bytes` bytes. */
export class Tmpfs {
  #filler = 0;
  private constructor(readonly dir: string) {}

  static mount(bytes: number): Tmpfs {
    const dir = mkdtempSync(path.join(os.tmpdir(), "statelog-tmpfs-"));
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${bytes},mode=0755`, "tmpfs", dir]);
    mounted.push(dir);
    return new Tmpfs(dir);
  }

  /** Fills the file system: writes a filler file until ENOSPC. Returns the bytes it took. */
  fill(): number {
    const file = path.join(this.dir, `filler-${this.#filler++}`);
    const fd = openSync(file, "w");
    const chunk = Buffer.alloc(4096, 120);
    let bytes = 0;
    try {
      for (;;) bytes += writeSync(fd, chunk);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOSPC") throw error;
    } finally {
      closeSync(fd);
    }
    return bytes;
  }

  /** Frees what {@link fill} took. */
  free(): void {
    for (let i = 0; i < this.#filler; i++) rmSync(path.join(this.dir, `filler-${i}`), { force: true });
  }

  readOnly(): void {
    execFileSync("mount", ["-o", "remount,ro", this.dir]);
  }

  readWrite(): void {
    execFileSync("mount", ["-o", "remount,rw", this.dir]);
  }
}
