/**
 * How many VMs hold resources right now, across every pyro process sharing
 * the state directory: one-shot runs in flight, persistent VMs created or
 * started, and workspaces whose VM is running.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { isAlive, type ProcessIdentity } from "./procfs.js"
import { POOL_ID_PREFIX } from "./warmPool.js"

const readJson = (path: string): Record<string, unknown> | undefined => {
  try {
    return JSON.parse(Fs.readFileSync(path, "utf8")) as Record<string, unknown>
  } catch {
    return undefined // being created or removed
  }
}

const subdirs = (dir: string) => {
  try {
    return Fs.readdirSync(dir)
  } catch {
    return []
  }
}

export const countActiveVms = (stateDir: string, now = Date.now()): number => {
  let active = 0
  for (const id of subdirs(Path.join(stateDir, "vms"))) {
    const record = readJson(Path.join(stateDir, "vms", id, "vm.json"))
    if (!record) continue
    // Warm-pool VMs are idle spares: they give way to real work rather than count against it.
    if (id.startsWith(POOL_ID_PREFIX)) continue
    if (record["kind"] === "ephemeral") {
      if (isAlive(record["owner"] as ProcessIdentity)) active++
      continue
    }
    const expired = Date.parse(String(record["expires_at"])) <= now
    const vmm = record["vmm"] as ProcessIdentity | null
    const running = vmm !== null && vmm !== undefined && isAlive(vmm)
    if (!expired && (record["state"] === "created" || running)) active++
  }
  for (const id of subdirs(Path.join(stateDir, "workspaces"))) {
    const record = readJson(Path.join(stateDir, "workspaces", id, "workspace.json"))
    const vmm = record?.["vmm"] as ProcessIdentity | null | undefined
    if (vmm && isAlive(vmm)) active++
  }
  return active
}
