/**
 * `pyro prepare ENV`: install an environment and make its templates (the one
 * fresh VMs start from, and the one for workspaces, whose disks are journaled),
 * so the next start of either is warm.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Effect from "effect/Effect"
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
      const state = vm.state === "warm" && workspace.state === "warm" ? "warm" : "cold"
      const seconds = ((Date.now() - started) / 1000).toFixed(1)
      if (args.json) {
        yield* printJson({ environment: environment.name, state, vm, workspace, duration_ms: Date.now() - started })
      } else {
        const line = (label: string, s: TemplateStatus) =>
          s.state === "warm"
            ? `  ${label}: warm (template ${s.key}, ${s.built ? "made now" : "already made"})\n`
            : `  ${label}: cold (${s.reason})\n`
        yield* writeStdout(
          `${environment.name}: ${state} in ${seconds} s\n${line("VMs", vm)}${line("workspaces", workspace)}`
        )
      }
      yield* setExitCode(state === "warm" ? 0 : 1)
    })
).pipe(Command.withDescription(
  "Install an environment and make its VM and workspace templates, so both start in a fraction of a second"
))
