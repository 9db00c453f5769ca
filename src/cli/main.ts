/**
 * The `pyro` command tree: the operations' commands (derived from the table) and the operator's own.
 *
 * A short command's time goes mostly to evaluating modules and building services, so
 * each top-level command is loaded only when the tree needs it, and builds its
 * services only when it runs: `pyro run …` loads `run` alone and builds no workspace
 * manager; `--version`, `--help` and usage errors build nothing. The commands not
 * named by the first word stand in by name alone (all a usage error shows of them); a
 * first word that names none (an option, a typo) gets the whole tree, and so do
 * `--completions` and `--wizard`.
 */
import * as Command from "@effect/cli/Command"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { PyroConfigLive } from "../layers/PyroConfigLive.js"
import { vmServicesLayer } from "../layers/VmServices.js"
import type { Progress } from "../services/Progress.js"
import { operationCommand } from "./derive.js"
import { VERSION } from "./version.js"

export { VERSION }

/** Every service, built when a command that may use any of them runs (its modules loaded then too). */
const allServices = (progress: Layer.Layer<Progress>) =>
  Layer.unwrapEffect(Effect.map(Effect.promise(() => import("../layers/App.js")), (app) => app.appLayer(progress)))

/** The top-level commands in the order `pyro --help` lists them, each loaded on demand with the services it runs on. */
const topLevel = (progress: Layer.Layer<Progress>) => {
  const withAll = <N extends string, A, E, R>(load: () => Promise<Command.Command<N, R, E, A>>) =>
    Effect.map(Effect.promise(load), Command.provide(allServices(progress)))
  return {
    run: Effect.map(
      Effect.promise(() => import("../api/vm.js")),
      ({ vmRun }) => operationCommand(vmRun).pipe(Command.provide(vmServicesLayer(PyroConfigLive, progress)))
    ),
    env: withAll(() => import("./env.js").then((m) => m.envCommand)),
    workspace: withAll(() => import("./workspace.js").then((m) => m.workspaceCommand)),
    prepare: withAll(() => import("./prepare.js").then((m) => m.prepareCommand)),
    mcp: withAll(() => import("./mcp.js").then((m) => m.mcpCommand)),
    host: withAll(() => import("./host.js").then((m) => m.hostCommand)),
    doctor: withAll(() => import("./doctor.js").then((m) => m.doctorCommand))
  }
}

/** @effect/cli's built-in options that act on the whole tree wherever they are given. */
const WHOLE_TREE_OPTIONS = new Set(["--completions", "--wizard"])

/** The CLI for these arguments (`process.argv`, node and script first), over a progress reporter. */
export const cli = (argv: ReadonlyArray<string>, progress: Layer.Layer<Progress>) =>
  Effect.gen(function*() {
    const commands = topLevel(progress)
    const first = argv[2]
    const chosen = first !== undefined && Object.hasOwn(commands, first) && !argv.some((a) => WHOLE_TREE_OPTIONS.has(a))
      ? first
      : undefined
    // The others stand in by name only: a usage error at the top names every command.
    const [head, ...rest] = yield* Effect.all(
      Object.entries(commands).map(([name, load]) => chosen === undefined || name === chosen ? load : Effect.succeed(Command.make(name)))
    )
    const pyro = Command.make("pyro").pipe(
      Command.withDescription("Disposable micro-VM sandboxes for coding agents"),
      Command.withSubcommands([head!, ...rest])
    )
    return yield* Command.run(pyro, { name: "pyro", version: VERSION })(argv)
  })
