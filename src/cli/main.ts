/** The `pyro` command tree. */
import * as Command from "@effect/cli/Command"
import { doctorCommand } from "./doctor.js"
import { envCommand } from "./env.js"
import { runCommand } from "./run.js"

export const VERSION = "0.1.0"

export const pyro = Command.make("pyro").pipe(
  Command.withDescription("Disposable micro-VM sandboxes for coding agents"),
  Command.withSubcommands([runCommand, envCommand, doctorCommand])
)

export const cli = Command.run(pyro, { name: "pyro", version: VERSION })
