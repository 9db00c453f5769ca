/**
 * `pyro prepare ENV`: install an environment and make its templates (the one
 * fresh VMs start from, and the one for workspaces, whose disks are journaled),
 * so the next start of either is warm. With `--spares N`: keep N spare VMs of
 * that shape ready (src/vm/spares/), for any pyro process to claim.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { PyroConfig } from "../services/PyroConfig.js"
import { fillSpares, spareSpec } from "../vm/spares/fill.js"
import { withLock } from "../host/lock.js"
import { MAX_SPARES_PER_SHAPE, reapSpares, spareFillLock, spareHostOf, spareKey, writeTarget } from "../vm/spares/store.js"
import { UsageError } from "./usage.js"
import { EnvironmentStore } from "../services/EnvironmentStore.js"
import { KernelStore } from "../services/KernelStore.js"
import { FRESH_VM_TEMPLATE, type TemplateStatus, Vmm, WORKSPACE_TEMPLATE } from "../services/Vmm.js"
import { bootSpecFor } from "../vm/bootSpec.js"
import { setExitCode } from "./exitCode.js"
import { json, sizing } from "./options.js"
import { printJson, writeStdout } from "./output.js"

export const prepareCommand = Command.make(
  "prepare",
  {
    environment: Args.text({ name: "ENV" }),
    vcpuCount: sizing.vcpuCount,
    memMib: sizing.memMib,
    network: sizing.network,
    spares: Options.integer("spares").pipe(
      Options.optional,
      Options.withDescription(
        `Keep this many spare VMs of this shape ready (0-${MAX_SPARES_PER_SHAPE}, 0 removes them): restored and warmed, outside the active-VM limit, each claimed by one run`
      )
    ),
    json
  },
  (args) =>
    Effect.gen(function*() {
      const started = Date.now()
      const [assets, environment] = yield* Effect.all([
        (yield* KernelStore).ensure,
        (yield* EnvironmentStore).ensure(args.environment)
      ], { concurrency: 2 })
      const vmm = yield* Vmm
      const spec = bootSpecFor("prepare", assets, environment, { vcpus: args.vcpuCount, memMib: args.memMib, network: args.network })
      const vm = yield* vmm.prepareTemplate(spec, FRESH_VM_TEMPLATE)
      const workspace = yield* vmm.prepareTemplate(spec, WORKSPACE_TEMPLATE)
      const spares = yield* Option.match(args.spares, {
        onNone: () => Effect.succeed(undefined),
        onSome: (count) => keepSpares(environment.name, args, count)
      })
      const state = vm.state === "warm" && workspace.state === "warm" ? "warm" : "cold"
      const seconds = ((Date.now() - started) / 1000).toFixed(1)
      if (args.json) {
        yield* printJson({
          environment: environment.name,
          state,
          vm,
          workspace,
          ...(spares ? { spares } : {}),
          duration_ms: Date.now() - started
        })
      } else {
        const line = (label: string, s: TemplateStatus) =>
          s.state === "warm"
            ? `  ${label}: warm (template ${s.key}, ${s.built ? "made now" : "already made"})\n`
            : `  ${label}: cold (${s.reason})\n`
        yield* writeStdout(
          `${environment.name}: ${state} in ${seconds} s\n${line("VMs", vm)}${line("workspaces", workspace)}` +
            (spares ? `  spares: ${spares.ready} ready (${spares.target} wanted)\n` : "")
        )
      }
      yield* setExitCode(state === "warm" ? 0 : 1)
    })
).pipe(Command.withDescription(
  "Install an environment and make its VM and workspace templates, so both start in a fraction of a second"
))

/** Record the operator's count for this shape and fill it now (or reap it, for 0). */
const keepSpares = (
  environment: string,
  sizing: { readonly vcpuCount: number; readonly memMib: number; readonly network: boolean },
  count: number
) =>
  Effect.gen(function*() {
    if (!Number.isInteger(count) || count < 0 || count > MAX_SPARES_PER_SHAPE) {
      return yield* new UsageError({ detail: `--spares must be between 0 and ${MAX_SPARES_PER_SHAPE}` })
    }
    if (sizing.network) {
      return yield* new UsageError({ detail: "--spares: spare VMs have no network; leave out --network" })
    }
    const config = yield* PyroConfig
    const shape = { environment, vcpu_count: sizing.vcpuCount, mem_mib: sizing.memMib }
    const key = spareKey(yield* spareSpec(shape), spareHostOf(config, (yield* Vmm).vmmExecutable))!
    yield* writeTarget(config.stateDir, key, shape, count)
    if (count === 0) {
      // After any filler at work: it reads the target before each spare, so it stops, and this reaps all.
      const qemu = (yield* Vmm).vmmExecutable
      yield* withLock(config.stateDir, spareFillLock(key), reapSpares(config.stateDir, { idleMs: 0, qemu, key, all: true }))
      return { target: 0, ready: 0 }
    }
    const filled = yield* fillSpares(shape, count)
    return { target: count, ready: filled.spares }
  })
