import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Effect from "effect/Effect"
import { VmRunInput } from "../contract/vm.js"
import { VmManager } from "../services/VmManager.js"
import { setExitCode } from "./exitCode.js"
import { restoreForcedArg } from "./forcedArgs.js"
import { json, sizing } from "./options.js"
import { printJson, writeStderr, writeStdout } from "./output.js"
import { decodeArgs } from "./usage.js"

const environment = Args.text({ name: "ENV" }).pipe(Args.withDescription("Environment to boot, e.g. debian:12 or tiny"))
const command = Args.text({ name: "COMMAND" }).pipe(
  Args.atLeast(1),
  Args.withDescription("The command and its arguments, after --; run directly, without a shell")
)

export const runCommand = Command.make(
  "run",
  { environment, command, ...sizing, json },
  (args) =>
    Effect.gen(function*() {
      const input = yield* decodeArgs(VmRunInput, {
        environment: args.environment,
        command: args.command.map(restoreForcedArg),
        vcpu_count: args.vcpuCount,
        mem_mib: args.memMib,
        timeout_seconds: args.timeoutSeconds,
        ttl_seconds: args.ttlSeconds,
        network: args.network,
        allow_host_compat: args.allowHostCompat
      })
      const manager = yield* VmManager
      const outcome = yield* manager.run(
        input,
        args.json ? {} : { onOutput: (fd, bytes) => (fd === 1 ? writeStdout(bytes) : writeStderr(bytes)) }
      )
      if (args.json) yield* printJson(outcome.result)
      yield* setExitCode(outcome.result.exit_code)
    })
).pipe(Command.withDescription("Boot a fresh VM, run one command in it, print its output and exit with its exit code"))

