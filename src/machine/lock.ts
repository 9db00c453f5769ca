/**
 * The locks machines are kept under, across every pyro process sharing the
 * state directory (held the way src/host/lock.ts holds any lock):
 *
 * - the state lock `vms.lock`, for bookkeeping and the active-VM limit: held
 *   briefly, never across a boot;
 * - a machine's own lock, for operations that must not overlap on one machine
 *   (`vms/<id>/start`, `workspaces/<id>`).
 */
import type * as Effect from "effect/Effect"
import { tryLock, withLock } from "../host/lock.js"

/** Run `body` holding the state lock (`vms.lock`). */
export const withStateLock = <A, E, R>(stateDir: string, body: Effect.Effect<A, E, R>) =>
  withLock(stateDir, "vms.lock", body)

/** A machine's own lock: its directory under the state directory, and what it guards if not everything. */
export interface MachineLock {
  readonly root: "vms" | "workspaces"
  readonly id: string
  readonly guards?: string
}

/** The lock's name: `<root>/<id>[/<guards>]`. */
const lockName = ({ guards, id, root }: MachineLock) => guards === undefined ? `${root}/${id}` : `${root}/${id}/${guards}`

/** Run `body` holding a machine's own lock. */
export const withMachineLock = <A, E, R>(stateDir: string, lock: MachineLock, body: Effect.Effect<A, E, R>) =>
  withLock(stateDir, lockName(lock), body)

/** Take a machine's lock if it is free: its release, or none (see `tryLock`). */
export const tryMachineLock = (stateDir: string, lock: MachineLock) => tryLock(stateDir, lockName(lock))
