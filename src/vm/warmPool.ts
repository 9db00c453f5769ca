/**
 * A warm pool for long-lived processes (the MCP server, an SDK instance):
 * VMs restored from their template, attached, and warmed with one command,
 * waiting for a vm_run of the same shape (environment, sizing, network). A
 * run takes one and the pool refills behind it. Pool VMs live in the pool's
 * scope: closing it (shutdown) kills every one of them.
 */
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import { randomBytes } from "node:crypto"
import type { BootSpec, RunningVm } from "../services/Vmm.js"
import { runCommand } from "./execCommand.js"

/** Pool VM ids start with this. They hold no active-VM slot (they give way to real work): no run claims them. */
export const POOL_ID_PREFIX = "pool"

export interface PooledVm {
  readonly vm: RunningVm
  /** Closing it kills the VM and removes its files. */
  readonly scope: Scope.CloseableScope
}

export interface WarmPool {
  /** A ready VM for `key`, if one is waiting. */
  readonly take: (key: string) => Effect.Effect<PooledVm | undefined>
  /** Keep `size` VMs of this shape ready (in the background). */
  readonly refill: (key: string, spec: () => Effect.Effect<BootSpec, unknown>) => Effect.Effect<void>
  readonly setSize: (size: number) => Effect.Effect<void>
  readonly size: Effect.Effect<number>
}

export const makeWarmPool = (
  boot: (spec: BootSpec) => Effect.Effect<RunningVm, unknown, Scope.Scope>
): Effect.Effect<WarmPool, never, Scope.Scope> =>
  Effect.gen(function*() {
    const poolScope = yield* Effect.scope
    // Scopes close in reverse order: fills are interrupted first, then the VMs go. The other
    // way round, a fill would see its VM killed under it and take that for a broken template.
    const vmsScope = yield* Scope.fork(poolScope, ExecutionStrategy.sequential)
    const fillScope = yield* Scope.fork(poolScope, ExecutionStrategy.sequential)
    const ready = new Map<string, Array<PooledVm>>()
    const filling = new Set<string>()
    let size = 0

    const bootOne = (spec: BootSpec) =>
      Effect.gen(function*() {
        const scope = yield* Scope.fork(vmsScope, ExecutionStrategy.sequential)
        return yield* Effect.gen(function*() {
          const vm = yield* boot({ ...spec, id: `${POOL_ID_PREFIX}${randomBytes(4).toString("hex")}` })
          yield* vm.attach
          // One command first: under TCG a fresh VM's first exec pays for translating its code paths.
          yield* runCommand(vm.connection, { command: ["true"], cwd: "/workspace", timeoutSeconds: 30, maxOutputBytes: 1024 })
          return { vm, scope } satisfies PooledVm
        }).pipe(Scope.extend(scope), Effect.onError(() => Scope.close(scope, Exit.void)))
      })

    const take = (key: string) =>
      Effect.sync(() => {
        const list = ready.get(key)
        return list && list.length > 0 ? list.shift() : undefined
      })

    const refill = (key: string, spec: () => Effect.Effect<BootSpec, unknown>) =>
      Effect.suspend(() => {
        if (size === 0 || filling.has(key)) return Effect.void
        filling.add(key)
        const fill = Effect.gen(function*() {
          const resolved = yield* spec()
          while ((ready.get(key)?.length ?? 0) < size) {
            const pooled = yield* bootOne(resolved)
            ready.set(key, [...(ready.get(key) ?? []), pooled])
          }
        }).pipe(
          // A pool that cannot fill just stays empty: runs boot as usual.
          Effect.catchAllCause(() => Effect.void),
          Effect.ensuring(Effect.sync(() => filling.delete(key)))
        )
        return Effect.asVoid(Effect.forkIn(fill, fillScope))
      })

    const setSize = (n: number) =>
      Effect.gen(function*() {
        size = Math.max(0, Math.floor(n))
        for (const [key, list] of ready) {
          while (list.length > size) yield* Scope.close(list.pop()!.scope, Exit.void)
          if (list.length === 0) ready.delete(key)
        }
      })

    return { take, refill, setSize, size: Effect.sync(() => size) }
  })
