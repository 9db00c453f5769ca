/** `pyro mcp serve`: the MCP server over stdio, for as long as the client keeps stdin open. */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import * as FiberSet from "effect/FiberSet"
import * as Schedule from "effect/Schedule"
import type { OperationServices } from "../api/operation.js"
import { DEFAULT_MCP_PROFILE, MCP_PROFILES, PROFILES } from "../api/profiles.js"
import { reapAll } from "../api/vm.js"
import { Caller, toolCaller } from "../services/Caller.js"
import { PyroConfig } from "../services/PyroConfig.js"
import { rootProblem } from "../workspace/import/roots.js"
import { VmManager } from "../services/VmManager.js"
import { describeProjectSource } from "../workspace/project/describe.js"
import { resolveProjectSource } from "../workspace/project/resolve.js"
import { checkedProjectRequest, projectFlagsOf, projectOptions, type ProjectOptionValues } from "./projectOptions.js"
import { VERSION } from "./version.js"
import { UsageError } from "./usage.js"
import { MAX_SPARES_PER_SHAPE } from "../vm/spares/store.js"

/** How often a long-lived server deletes VMs whose TTL has passed. */
const REAP_EVERY = "30 seconds"

const warmPool = Options.integer("warm-pool").pipe(
  Options.withDefault(0),
  Options.withDescription("Keep this many spare VMs (0-8) of each vm_run shape this server runs, so vm_run answers in milliseconds (0: PYRO_SPARES, default none). Spares are shared with other pyro processes and reaped when idle")
)

const profile = Options.choice("profile", MCP_PROFILES).pipe(
  Options.withDefault(DEFAULT_MCP_PROFILE),
  Options.withDescription(
    "Which tools a model sees: " + MCP_PROFILES.map((name) => `${name} (${PROFILES[name].summary})`).join("; ")
  )
)

const allowHostCompat = Options.boolean("allow-host-compat").pipe(
  Options.withDescription(
    "Let clients run commands on this host itself (vm_run's allow_host_compat) when it cannot run VMs at all: no isolation"
  )
)

const noProjectSource = Options.boolean("no-project-source").pipe(
  Options.withDescription("Do not seed from a project: workspace_create without seed_path starts empty")
)

/** The project source the flags name, resolved (a clone made, removed when the server's scope closes). */
const projectSourceOf = (args: ProjectOptionValues & { readonly noProjectSource: boolean }) =>
  Effect.gen(function*() {
    const request = yield* checkedProjectRequest({ ...projectFlagsOf(args), noProjectSource: args.noProjectSource })
    const source = yield* resolveProjectSource(request)
    const described = describeProjectSource(source)
    // Said on stderr for the operator (stdout carries only the protocol).
    if (described !== undefined) yield* Effect.logInfo(`workspace_create without seed_path seeds from ${described}`)
    return source
  })

/** Roots that cannot work are the operator's to fix: say so on stderr (stdout carries only the protocol). */
const warnAboutImportRoots = Effect.gen(function*() {
  const { importRoots } = yield* PyroConfig
  if (importRoots.length === 0) {
    yield* Effect.logWarning(
      "no import roots: clients cannot use seed_path or source_path (started in /, the home directory or above it, " +
        "or PYRO_IMPORT_ROOTS is empty; set PYRO_IMPORT_ROOTS)"
    )
  }
  for (const root of importRoots) {
    const problem = rootProblem(root)
    if (problem) yield* Effect.logWarning(`PYRO_IMPORT_ROOTS: ${root} ${problem}`)
  }
})

const serve = Command.make("serve", { profile, warmPool, allowHostCompat, ...projectOptions, noProjectSource }, (args) =>
  Effect.scoped(Effect.gen(function*() {
    const projectSource = yield* projectSourceOf(args)
    const vms = yield* VmManager
    yield* warnAboutImportRoots
    if (args.warmPool < 0 || args.warmPool > MAX_SPARES_PER_SHAPE) {
      return yield* new UsageError({ detail: `--warm-pool must be between 0 and ${MAX_SPARES_PER_SHAPE}` })
    }
    // 0 leaves PYRO_SPARES as it is.
    if (args.warmPool > 0) yield* vms.setWarmPool(args.warmPool)
    const created = new Set<string>()
    // Closing this scope (stdin closed, SIGTERM, SIGINT) interrupts operations in flight,
    // which removes their one-shot VMs, and then the VMs this server created are deleted.
    yield* Effect.addFinalizer(() =>
      Effect.forEach(created, (id) => Effect.ignore(vms.remove(id)), { concurrency: 4, discard: true })
    )
    // Loaded only here: the MCP SDK (with its JSON Schema validators) is a third of the CLI's
    // code, and every other command starts faster without it.
    const [{ createMcpServer }, { StdioServerTransport }] = yield* Effect.promise(() =>
      Promise.all([import("../mcp/server.js"), import("@modelcontextprotocol/sdk/server/stdio.js")])
    )
    const runFork = yield* FiberSet.makeRuntime<OperationServices>()
    const server = createMcpServer(runFork, {
      version: VERSION,
      profile: args.profile,
      projectSource,
      onVmCreated: (id) => created.add(id)
    })
    yield* Effect.forkScoped(Effect.repeat(Effect.ignore(reapAll), Schedule.spaced(REAP_EVERY)))

    const transport = new StdioServerTransport()
    yield* Effect.acquireRelease(
      Effect.promise(() => server.connect(transport)),
      () => Effect.promise(() => server.close().catch(() => undefined))
    )
    yield* Effect.async<void>((resume) => {
      const done = () => resume(Effect.void)
      process.stdin.once("end", done)
      process.stdin.once("close", done)
      server.onclose = done
    })
    // Every call a client makes runs as an untrusted tool caller, with what the operator granted.
  }).pipe(Effect.provideService(Caller, toolCaller({ hostCompat: args.allowHostCompat }))))).pipe(Command.withDescription("Serve pyro's tools to an MCP client over stdio (vm_run, vm_create, ...)"))

export const mcpCommand = Command.make("mcp").pipe(
  Command.withDescription("Model Context Protocol server"),
  Command.withSubcommands([serve])
)
