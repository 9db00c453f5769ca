/** `pyro prepare ENV`: install an environment and make its template, so the next start is warm. */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Effect from "effect/Effect"
import { EnvironmentStore } from "../services/EnvironmentStore.js"
import { KernelStore } from "../services/KernelStore.js"
import { Vmm } from "../services/Vmm.js"
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
      const status = yield* (yield* Vmm).prepareTemplate(
        bootSpecFor("prepare", assets, environment, { vcpus: args.vcpuCount, memMib: args.memMib, network: args.network })
      )
      const result = { environment: environment.name, ...status, duration_ms: Date.now() - started }
      if (args.json) {
        yield* printJson(result)
      } else {
        yield* writeStdout(
          status.state === "warm"
            ? `${environment.name}: warm (template ${status.key}${status.built ? ", made now" : ", already made"}) in ${
              ((Date.now() - started) / 1000).toFixed(1)
            } s\n`
            : `${environment.name}: cold (${status.reason})\n`
        )
      }
      yield* setExitCode(status.state === "warm" ? 0 : 1)
    })
).pipe(Command.withDescription("Install an environment and make its VM template, so VMs of it start in a fraction of a second"))
