/**
 * A one-shot run's claim on the host: the active-VM limit checked and a slot
 * claimed in one step under the state lock (so parallel runs cannot all slip
 * under it), in `vms/<id>`: a ready spare's directory moved there, or a new one.
 * The ephemeral record (this process as owner) and the boot claim go in with it,
 * so a kill -9 leaves what the start-up sweep removes. Shared by
 * `VmManagerLive.run` and the lean `pyro run` (src/vm/spares/serveRun.ts).
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Fs from "node:fs"
import { writeBootClaim } from "../machine/claims.js"
import { withStateLock } from "../machine/lock.js"
import { newMachineId } from "../machine/record.js"
import type { ProcessIdentity } from "./procfs.js"
import { killGroup } from "./qemu/process.js"
import { claimSpare } from "./spares/store.js"
import { type VmPaths, vmPaths, writeEphemeralRecord } from "./vmDir.js"
import { isVmmProcess } from "./vmmIdentity.js"

export interface RunClaim {
  readonly paths: VmPaths
  /** The spare this run took, whose QEMU is already running in `paths.dir`. */
  readonly spare: { readonly id: string; readonly vmm: ProcessIdentity } | undefined
}

/** A claimed spare's QEMU is not our child: killed once proved to be it (`qemu`: the binary's real path), without waiting for it. */
export const killSpare = (who: ProcessIdentity, qemu: string | undefined) => {
  if (isVmmProcess(who, qemu)) killGroup(who.pid, "SIGKILL")
}

/**
 * Claim a slot for a run, and a ready spare of `spareKey` if there is one; with
 * `spareOnly`, nothing at all (None) when there is no spare. Released at the scope's
 * end: the spare's QEMU killed and the directory removed, then `afterRelease` (the
 * shape's refill) run, so that what it starts does not compete with the release.
 */
export const claimRunSlot = <E>(options: {
  readonly stateDir: string
  readonly checkLimit: Effect.Effect<void, E>
  readonly spareKey: string | undefined
  readonly spareOnly: boolean
  readonly qemu: string | undefined
  readonly afterRelease?: Effect.Effect<void>
  /** A new VM's directory if not a fresh one: a head start's, and the QEMU already running there, for its record. */
  readonly headStart?: { readonly id: string; readonly vmm: number }
}) =>
  Effect.acquireRelease(
    withStateLock(
      options.stateDir,
      Effect.gen(function*() {
        yield* options.checkLimit
        const spare = options.spareKey === undefined
          ? undefined
          : Option.getOrUndefined(claimSpare(options.stateDir, options.spareKey))
        if (spare === undefined && options.spareOnly) return Option.none<RunClaim>()
        const paths = vmPaths(options.stateDir, spare?.id ?? options.headStart?.id ?? newMachineId())
        // A claim that cannot be written down is undone: the spare is ours now, and nobody else would end it.
        yield* Effect.gen(function*() {
          Fs.mkdirSync(paths.dir, { recursive: true, mode: 0o700 })
          yield* writeEphemeralRecord(paths, spare?.vmm ?? (paths.id === options.headStart?.id ? options.headStart.vmm : undefined))
          yield* writeBootClaim(paths.dir)
        }).pipe(Effect.onError(() =>
          Effect.sync(() => {
            if (spare) killSpare(spare.vmm, options.qemu)
            Fs.rmSync(paths.dir, { recursive: true, force: true })
          })
        ))
        return Option.some<RunClaim>({ paths, spare })
      })
    ),
    (claim) =>
      Option.isNone(claim) ? Effect.void : Effect.zipRight(
        Effect.sync(() => {
          if (claim.value.spare) killSpare(claim.value.spare.vmm, options.qemu)
          Fs.rmSync(claim.value.paths.dir, { recursive: true, force: true })
        }),
        options.afterRelease ?? Effect.void
      )
  )
