/**
 * The active-VM limit: how many VMs hold resources right now, across every pyro
 * process sharing the state directory. What counts is said by each kind of record
 * (`MachineKind`), next to the record itself; the list of kinds is put together
 * above the managers (src/layers/machineKinds.ts), so this module knows none of
 * them. Each kind decodes what it needs to decide (a workspace, its `vmm` field
 * alone: src/workspace/census.ts); a record where that does not decode (being
 * written or removed) counts as nothing, and a directory holding no record a kind
 * reads (a spare's or a template VM's) neither.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { entriesIfAny, readTextIfAny } from "../host/maybeRead.js"
import { VmLimitReached } from "../contract/errors.js"
import { bootClaimHeld, removeBootClaim, writeBootClaim } from "./claims.js"
import { withStateLock } from "./lock.js"

/** One kind of machine record, read back from its text: its own kind says whether it holds a slot. */
export interface MachineKind {
  /** The directory holding one subdirectory per machine of this kind. */
  readonly root: (stateDir: string) => string
  readonly paths: (stateDir: string, id: string) => { readonly dir: string; readonly record: string }
  /** None: the text is not a record of this kind. */
  readonly holdsSlot: (text: string, dir: string, now: number) => Option.Option<boolean>
}

/**
 * A kind from its record's decoder and its rule. `claimed`: whether a live process
 * holds a boot claim in the machine's directory (read only when asked).
 */
export const machineKind = <A>(kind: {
  readonly root: MachineKind["root"]
  readonly paths: MachineKind["paths"]
  readonly decode: (text: string) => Option.Option<A>
  readonly holdsSlot: (record: A, claimed: () => boolean, now: number) => boolean
}): MachineKind => ({
  root: kind.root,
  paths: kind.paths,
  holdsSlot: (text, dir, now) => Option.map(kind.decode(text), (record) => kind.holdsSlot(record, () => bootClaimHeld(dir), now))
})



export const countActiveVms = (stateDir: string, kinds: ReadonlyArray<MachineKind>, now = Date.now()): number => {
  let active = 0
  // Kinds may share a directory (ephemeral and persistent VMs): each machine is counted by the kind that reads it.
  const seen = new Set<string>()
  for (const kind of kinds) {
    for (const id of entriesIfAny(kind.root(stateDir))) {
      const paths = kind.paths(stateDir, id)
      if (seen.has(paths.dir)) continue
      const holds = Option.flatMap(readTextIfAny(paths.record), (text) => kind.holdsSlot(text, paths.dir, now))
      if (Option.isNone(holds)) continue
      seen.add(paths.dir)
      if (holds.value) active++
    }
  }
  return active
}

/** VMs that wait outside the limit (spares): told in its error, never counted. */
export type OutsideLimit = (stateDir: string) => number

/** Fails when `limit` VMs are already active; call under the state lock, with the claim that follows. */
export const ensureBelowLimit = (stateDir: string, kinds: ReadonlyArray<MachineKind>, limit: number, outside?: OutsideLimit) =>
  Effect.suspend(() => {
    const active = countActiveVms(stateDir, kinds)
    if (active < limit) return Effect.void
    const spares = outside?.(stateDir) ?? 0
    return Effect.fail(new VmLimitReached({ limit, active, ...(spares > 0 ? { spares } : {}) }))
  })

/**
 * Check the limit and claim a slot for booting the machine in `dir` in one step (so
 * parallel starts cannot all slip under it), holding the claim for the scope: until the
 * record names the running VM, or the boot failed.
 */
export const claimBootSlot = (
  stateDir: string,
  kinds: ReadonlyArray<MachineKind>,
  dir: string,
  limit: number,
  outside?: OutsideLimit
) =>
  Effect.acquireRelease(
    withStateLock(stateDir, Effect.zipRight(ensureBelowLimit(stateDir, kinds, limit, outside), writeBootClaim(dir))),
    () => removeBootClaim(dir)
  )
