import * as Command from "@effect/cli/Command"
import * as Effect from "effect/Effect"
import type { EnvironmentInfo } from "../services/EnvironmentStore.js"
import { EnvironmentStore } from "../services/EnvironmentStore.js"
import { json } from "./options.js"
import { printJson, writeStdout } from "./output.js"

export const formatEnvironment = (e: EnvironmentInfo) =>
  `${e.name} [${e.installed ? "installed" : "not installed"}] ${e.description}`

const list = Command.make("list", { json }, (args) =>
  Effect.gen(function*() {
    const environments = yield* (yield* EnvironmentStore).list
    yield* args.json
      ? printJson(environments)
      : writeStdout(environments.map(formatEnvironment).join("\n") + "\n")
  })).pipe(Command.withDescription("List the environments pyro knows and which are installed"))

export const envCommand = Command.make("env").pipe(
  Command.withDescription("Manage environments (root images VMs boot from)"),
  Command.withSubcommands([list])
)
