/** What the benchmarks ran on: printed with the results and kept in the JSON output. */
import { execFileSync } from "node:child_process";
import os from "node:os";

/** The machine a run was measured on. */
export interface MachineInfo {
  readonly node: string;
  readonly platform: string;
  readonly cpus: number;
  readonly cpuModel: string;
  readonly memoryGiB: number;
  /** `df -h` of the directory the benchmarks write to. */
  readonly disk: string;
  readonly date: string;
}

/** Describes this machine; `dir` is where the benchmarks write their files. */
export function machineInfo(dir: string): MachineInfo {
  let disk = "unknown";
  try {
    const lines = execFileSync("df", ["-h", dir], { encoding: "utf8" }).trim().split("\n");
    const cols = lines[1]?.split(/\s+/) ?? [];
    disk = `${cols[0] ?? "?"} (${cols[1] ?? "?"}, ${cols[4] ?? "?"} used, mounted on ${cols[5] ?? "?"})`;
  } catch {
    // df missing: keep "unknown"
  }
  return {
    node: process.version,
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    cpus: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model ?? "unknown",
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    disk,
    date: new Date().toISOString(),
  };
}

/** One line per fact. */
export function formatMachine(m: MachineInfo): string {
  return [
    `node ${m.node} on ${m.platform}`,
    `${m.cpus} CPUs (${m.cpuModel}), ${m.memoryGiB} GiB RAM`,
    `disk ${m.disk}`,
    `at ${m.date}`,
  ].join("; ");
}

/** The 1-minute load average, e.g. "load 1.52": how busy the shared machine was. */
export function loadNow(): string {
  return `load ${os.loadavg()[0]!.toFixed(2)}`;
}
