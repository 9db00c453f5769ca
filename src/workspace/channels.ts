/**
 * Many pyro processes on one workspace at once. A workspace VM has several
 * host channels (virtio-serial ports, each its own socket; QEMU serves one
 * host per port), and the agent serves each independently: a HELLO or a lost
 * host on one ends only the commands started on it. A process leases one
 * free channel per workspace (a machine lock per channel says which are
 * free, and goes with the process when it dies) and runs every call it makes
 * on that workspace over it, multiplexed; the lease is let go soon after the
 * process's last call, for other processes to take.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as RcMap from "effect/RcMap"
import type * as Scope from "effect/Scope"
import { tryMachineLock } from "../machine/lock.js"
import { GuestChannelError } from "../vm/errors.js"
import type { GuestConnection } from "../vm/protocol/mux.js"
import { channelSocketPath } from "../vm/vmDir.js"
import { workspacePaths } from "./store.js"

/** Channels a workspace VM is booted with: processes that may use it at the same moment. */
export const WORKSPACE_CHANNELS = 8
/** A lease outlives its process's last call by this long, so that a burst of calls shares one handshake. */
const LEASE_IDLE = Duration.seconds(2)
const BUSY_POLL = Duration.millis(25)

export interface ChannelLeaseOptions {
  readonly stateDir: string
  /** How long to wait for a free channel, and for its agent to answer. */
  readonly timeoutMs: number
  readonly connect: (socket: string, timeoutMs: number) => Effect.Effect<GuestConnection, GuestChannelError, Scope.Scope>
}

export interface LeaseKey {
  readonly id: string
  readonly channels: number
}

/** Take a free channel of the workspace and connect over it, for the scope; wait while all are taken. */
const leaseChannel = (options: ChannelLeaseOptions, key: LeaseKey) =>
  Effect.gen(function*() {
    const channelSocket = workspacePaths(options.stateDir, key.id).channelSocket
    const deadline = Date.now() + options.timeoutMs
    // Start at a random channel: processes arriving together spread out instead of racing for channel 0.
    const first = Math.floor(Math.random() * key.channels)
    for (;;) {
      for (let i = 0; i < key.channels; i++) {
        const n = (first + i) % key.channels
        const release = yield* tryMachineLock(options.stateDir, { root: "workspaces", id: key.id, guards: `channel/${n}` })
        if (Option.isNone(release)) continue
        yield* Effect.addFinalizer(() => release.value)
        // The agent gets the whole time to answer: a slow answer is the guest's, never the wait for a free channel.
        return yield* options.connect(channelSocketPath(channelSocket, n), options.timeoutMs)
      }
      if (Date.now() >= deadline) {
        return yield* new GuestChannelError({
          reason: "Busy",
          detail: `all ${key.channels} channels of workspace ${key.id} are in use by other pyro processes; try again`
        })
      }
      yield* Effect.sleep(BUSY_POLL)
    }
  })

/** A process's leases, one per workspace it is talking to. */
export const makeChannelLeases = (options: ChannelLeaseOptions) =>
  Effect.gen(function*() {
    const leases = yield* RcMap.make({
      lookup: (key: string) => {
        const [id, channels] = key.split(":")
        return leaseChannel(options, { id: id!, channels: Number(channels) })
      },
      idleTimeToLive: LEASE_IDLE
    })
    // A dropped lease's key is never used again: its idle timer must not end the lease made after it.
    const generations = new Map<string, number>()
    const keyOf = (key: LeaseKey) => `${key.id}:${key.channels}:${generations.get(key.id) ?? 0}`
    const invalidate = (key: LeaseKey) =>
      Effect.suspend(() => {
        const old = keyOf(key)
        generations.set(key.id, (generations.get(key.id) ?? 0) + 1)
        return RcMap.invalidate(leases, old)
      })
    /**
     * The workspace's connection for `use`. One found dead (its VM was
     * restarted or killed) is dropped and made anew once; a failure of the
     * channel drops the lease, so the next call starts clean.
     */
    const withChannel = <A, E, R>(key: LeaseKey, use: (connection: GuestConnection) => Effect.Effect<A, E, R>) =>
      Effect.scoped(Effect.gen(function*() {
        let connection = yield* RcMap.get(leases, keyOf(key))
        if (!(yield* connection.isOpen)) {
          yield* invalidate(key)
          connection = yield* RcMap.get(leases, keyOf(key))
        }
        return yield* use(connection)
      })).pipe(Effect.tapError((e) => (e instanceof GuestChannelError ? invalidate(key) : Effect.void)))
    return { withChannel }
  })
