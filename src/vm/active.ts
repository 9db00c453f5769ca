/**
 * How many VMs hold resources right now, across every pyro process sharing
 * the state directory: one-shot runs in flight, persistent VMs created or
 * started, and workspaces whose VM is running or being booted. Records are read through the
 * same schemas that wrote them; one that does not parse (being written or
 * removed) counts as nothing.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Fs from "node:fs"
import { VmLimitReached } from "../contract/errors.js"
import { decodeWorkspaceRecord, workspacePaths, workspacesRoot } from "../workspace/store.js"
import { isAlive } from "./procfs.js"
import { bootClaimHeld, decodePersistentRecord, isExpired, removeBootClaim, vmmAlive, withStateLock, writeBootClaim } from "./records.js"
import { decodeEphemeralRecord, vmPaths, vmsRoot } from "./vmDir.js"
import { TEMPLATE_VM_PREFIX } from "./template.js"
import { POOL_ID_PREFIX } from "./warmPool.js"

const readText = (path: string) => {
  try {
    return Option.some(Fs.readFileSync(path, "utf8"))
  } catch {
    return Option.none<string>()
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
  for (const id of subdirs(vmsRoot(stateDir))) {
    // Warm-pool VMs are idle spares and template VMs are the runtime's own, short-lived:
    // neither counts against the user's limit.
    if (id.startsWith(POOL_ID_PREFIX) || id.startsWith(TEMPLATE_VM_PREFIX)) continue
    const text = readText(vmPaths(stateDir, id).record)
    const ephemeral = Option.flatMap(text, decodeEphemeralRecord)
    if (Option.isSome(ephemeral)) {
      if (isAlive(ephemeral.value.owner)) active++
      continue
    }
    const persistent = Option.flatMap(text, decodePersistentRecord)
    if (Option.isSome(persistent)) {
      const record = persistent.value
      const holds = record.state === "created" || vmmAlive(record) || bootClaimHeld(vmPaths(stateDir, id).dir)
      if (!isExpired(record, now) && holds) active++
    }
  }
  for (const id of subdirs(workspacesRoot(stateDir))) {
    const paths = workspacePaths(stateDir, id)
    const record = Option.flatMap(readText(paths.record), decodeWorkspaceRecord)
    if (Option.isSome(record) && record.value.vmm && isAlive(record.value.vmm)) active++
    else if (bootClaimHeld(paths.dir)) active++
  }
  return active
}

/** Fails when `limit` VMs are already active; call under the state lock, with the claim that follows. */
export const ensureBelowLimit = (stateDir: string, limit: number) =>
  Effect.suspend(() => {
    const active = countActiveVms(stateDir)
    return active >= limit ? Effect.fail(new VmLimitReached({ limit, active })) : Effect.void
  })

/**
 * Check the limit and claim a slot for booting the machine in `dir` in one step (so
 * parallel starts cannot all slip under it), holding the claim for the scope: until the
 * record names the running VM, or the boot failed.
 */
export const claimBootSlot = (stateDir: string, dir: string, limit: number) =>
  Effect.acquireRelease(
    withStateLock(stateDir, Effect.zipRight(ensureBelowLimit(stateDir, limit), writeBootClaim(dir))),
    () => removeBootClaim(dir)
  )
