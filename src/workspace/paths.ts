/**
 * Where a workspace's files live in the state directory. Apart from the store, so
 * that what needs only the paths (the active-VM limit's census) loads no record schema.
 */
import { createHash } from "node:crypto"
import * as Path from "node:path"
import { RAM_DIR } from "../vm/ramFile.js"
import type { VmPaths } from "../vm/vmDir.js"

export interface WorkspacePaths extends VmPaths {
  readonly journal: string
  /** /workspace as it was right after create and seed: a tar, what workspace_diff compares against. */
  readonly baseline: string
  /** Why there is no baseline, when it could not be taken (too large). */
  readonly baselineMissing: string
  /** The host directory standing in for /workspace when running in host_compat mode. */
  readonly hostRoot: string
  readonly ram: string
}

/** A workspace VM's RAM file (src/vm/ramFile.ts), named by its directory: two state directories may hold one id. */
const ramFileOf = (dir: string) =>
  Path.join(RAM_DIR, createHash("sha256").update(dir).digest("hex").slice(0, 16))

export const workspacesRoot = (stateDir: string) => Path.join(stateDir, "workspaces")

export const workspacePaths = (stateDir: string, id: string): WorkspacePaths => {
  const dir = Path.join(workspacesRoot(stateDir), id)
  return {
    id,
    dir,
    record: Path.join(dir, "workspace.json"),
    journal: Path.join(dir, "journal.jsonl"),
    baseline: Path.join(dir, "baseline.tar"),
    baselineMissing: Path.join(dir, "baseline-missing.txt"),
    channelSocket: Path.join(dir, "channel.sock"),
    qmpSocket: Path.join(dir, "qmp.sock"),
    consoleLog: Path.join(dir, "console.log"),
    scratch: Path.join(dir, "scratch.ext4"),
    hostRoot: Path.join(dir, "host-workspace"),
    ram: ramFileOf(dir)
  }
}
