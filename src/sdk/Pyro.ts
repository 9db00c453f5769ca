/**
 * The Promise facade over pyro's services, for programs that are not written
 * with Effect: OpenAI tool loops, LangChain.js, the Vercel AI SDK. One
 * instance owns one runtime; `close()` deletes the VMs it created and stops
 * what is in flight.
 */
import type { Server } from "@modelcontextprotocol/sdk/server/index.js"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Path from "node:path"
import { ALL_OPERATIONS, invoke, type Operation, type OperationServices, VM_OPERATIONS, vmCreate, vmListEnvironments, WORKSPACE_OPERATIONS } from "../api/index.js"
import { type McpProfile, profileOperations } from "../api/profiles.js"
import { VERSION } from "../cli/version.js"
import { errorCode, errorMessage, InvalidInput } from "../contract/errors.js"
import { servicesLayer } from "../layers/App.js"
import { stderrLogger } from "../layers/StderrLogger.js"
import { clampOutputBudget, layerWith, parseAllowHosts } from "../layers/PyroConfigLive.js"
import { createMcpServer } from "../mcp/server.js"
import { toolJsonSchema } from "../mcp/toolSchema.js"
import { Caller, toolCaller } from "../services/Caller.js"
import { EnvironmentStore } from "../services/EnvironmentStore.js"
import { Progress, type ProgressEvent, ProgressSilent } from "../services/Progress.js"
import { ProjectSource } from "../services/ProjectSource.js"
import type { PyroConfigShape } from "../services/PyroConfig.js"
import { VmManager } from "../services/VmManager.js"
import { projectRequest } from "../workspace/project/flags.js"
import { resolveProjectSource } from "../workspace/project/resolve.js"

export interface PyroOptions {
  /** Defaults: `$PYRO_CACHE_DIR`, else `$XDG_CACHE_HOME/pyro`. */
  readonly cacheDir?: string
  /** Defaults: `$PYRO_STATE_DIR`, else `$XDG_STATE_HOME/pyro`. */
  readonly stateDir?: string
  /** VMs active at once (default 4, `PYRO_MAX_ACTIVE_VMS`). */
  readonly maxActiveVms?: number
  readonly accel?: PyroConfigShape["accel"]
  /** Output held in memory per stream (default 16 MiB). */
  readonly maxOutputBytes?: number
  /**
   * Output each stream of a result carries, head and tail around a marker
   * (default `PYRO_OUTPUT_BUDGET_BYTES`, else 32 KiB; at most 512 KiB).
   */
  readonly outputBudgetBytes?: number
  /**
   * Keep this many spare VMs (at most 8) of each vm_run shape without network
   * this instance runs, so runInVm answers in milliseconds; 0 (default, or
   * PYRO_SPARES) boots each on demand. Spares live in the state directory,
   * may be claimed by any pyro process, and outlive close() until claimed or
   * idle for PYRO_SPARE_IDLE_SECONDS.
   */
  readonly warmPool?: number
  /**
   * Let tool calls run commands on this host itself (`allow_host_compat`)
   * when it cannot run VMs at all: no isolation. Off by default; a tool
   * caller's `allow_host_compat` alone never does it.
   */
  readonly allowHostCompat?: boolean
  /**
   * Directories tool calls may import from (seed_path, source_path). Default:
   * `PYRO_IMPORT_ROOTS`, else the directory this process started in (unless
   * that is `/`, the home directory or above it). Never pyro's own state or cache.
   */
  readonly importRoots?: ReadonlyArray<string>
  /**
   * The most a tool call's guest may reach with egress: allow_hosts entries
   * (`github.com`, `*.npmjs.org`). A call without allow_hosts gets this list;
   * one naming an entry outside it is refused. Default: `PYRO_ALLOW_HOSTS`
   * (comma-separated), else no limit beyond public addresses.
   */
  readonly allowHosts?: ReadonlyArray<string>
  /**
   * Seed workspaces created without seed_path from this Git checkout's tracked
   * files, as `pyro mcp serve --project-path` does (docs/public-contract.md,
   * "Project-aware start"). Unlike the server, the SDK detects nothing: no
   * option, no project.
   */
  readonly projectPath?: string
  /**
   * Or from a clone of this repository (a local path or a file:// URL, never
   * the network), made at the first call and removed by close().
   */
  readonly repoUrl?: string
  /** With repoUrl: the branch, tag or commit to check out (default: its HEAD). */
  readonly repoRef?: string
  /** Progress of long work (environment builds and downloads); silent by default. */
  readonly onProgress?: (event: ProgressEvent) => void
}

/** The operator's allowlist as given to the constructor: a wrong entry is a programming error, thrown at once. */
const checkedAllowHosts = (entries: ReadonlyArray<string>): ReadonlyArray<string> => {
  const parsed = parseAllowHosts(entries.join(","))
  if (typeof parsed === "string" || parsed.length !== new Set(entries).size) {
    throw new PyroError("invalid_input", `allowHosts: ${typeof parsed === "string" ? parsed : "an entry is empty or holds a comma"}`)
  }
  return parsed
}

/**
 * The project the options name, resolved when the runtime is built (its
 * clone released with it); a bad combination is a programming error, thrown at once.
 */
const projectSourceLayer = (options: PyroOptions) => {
  const flags = { projectPath: options.projectPath, repoUrl: options.repoUrl, repoRef: options.repoRef }
  if (flags.projectPath === undefined && flags.repoUrl === undefined && flags.repoRef === undefined) return Layer.empty
  const request = projectRequest(flags, process.cwd())
  if (Either.isLeft(request)) {
    throw new PyroError("invalid_input", request.left.replace(/--project-path/g, "projectPath").replace(/--repo-url/g, "repoUrl").replace(/--repo-ref/g, "repoRef"))
  }
  return Layer.scoped(
    ProjectSource,
    resolveProjectSource(request.right).pipe(Effect.mapError((e) => new InvalidInput({ detail: e.message })))
  )
}

/** Every failure the SDK reports: `code` is stable (see docs/public-contract.md). */
export class PyroError extends Error {
  constructor(readonly code: string, message: string, override readonly cause?: unknown) {
    super(message)
    this.name = "PyroError"
  }
}

/**
 * Which tools, and how narrowly (src/api/profiles.ts): `vm-run`, `workspace-core`
 * or `workspace-full`.
 */
export interface ProfileOption {
  readonly profile?: McpProfile
}

/** A tool as OpenAI-style function calling and the Vercel AI SDK describe it. */
export interface ToolDefinition {
  readonly name: string
  readonly description: string
  readonly parameters: Record<string, unknown>
}

type Listed = (typeof VM_OPERATIONS)[number] | (typeof WORKSPACE_OPERATIONS)[number]
type In<O> = O extends { readonly input: Schema.Schema<any, infer II> } ? II : never
type Out<O> = O extends Operation<any, infer A> ? A : never
/** An id alone, or any object carrying it (a result of an earlier call), for inputs that are just that id. */
type Shorthand<O> = O extends { readonly sdkShorthand?: infer S extends string } ? string | { readonly [K in S]: string } : never
type Method<O> = (input: In<O> | Shorthand<O>) => Promise<Out<O>>

/** One method per operation, named as the table names it (runInVm, execWorkspace, ...). */
type DerivedMethods = { readonly [O in Listed as O["sdkMethod"]]: Method<O> }
/** Methods written out below, because they do more than call the operation. */
type Overridden = "createVm" | "listEnvironments"

/** close() never waits longer than this for any one step (a VM's own release kills it regardless). */
const CLOSE_WAIT = "15 seconds"

/** `"ab12..."` or `{ workspace_id: "ab12...", ... }` as the operation's input `{ workspace_id: "ab12..." }`. */
const expandShorthand = (op: Operation, input: unknown): unknown => {
  const field = op.sdkShorthand
  if (field === undefined) return input
  if (typeof input === "string") return { [field]: input }
  if (input !== null && typeof input === "object" && field in input) return { [field]: (input as Record<string, unknown>)[field] }
  return input
}

export interface Pyro extends Omit<DerivedMethods, Overridden> {}

export class Pyro {
  private readonly runtime
  /** Every call is a tool caller's: its input may come from a model. */
  private readonly caller
  private readonly created = new Set<string>()
  private readonly inFlight = new Set<Fiber.RuntimeFiber<unknown, unknown>>()
  private closed = false

  constructor(options: PyroOptions = {}) {
    const overrides: Partial<PyroConfigShape> = {
      ...(options.cacheDir ? { cacheDir: options.cacheDir } : {}),
      ...(options.stateDir ? { stateDir: options.stateDir } : {}),
      ...(options.maxActiveVms ? { maxActiveVms: options.maxActiveVms } : {}),
      ...(options.accel ? { accel: options.accel } : {}),
      ...(options.maxOutputBytes ? { maxOutputBytes: options.maxOutputBytes } : {}),
      ...(options.outputBudgetBytes ? { outputBudgetBytes: clampOutputBudget(options.outputBudgetBytes) } : {}),
      ...(options.importRoots ? { importRoots: options.importRoots.map((root) => Path.resolve(root)) } : {}),
      ...(options.allowHosts ? { allowHosts: Option.some(checkedAllowHosts(options.allowHosts)) } : {})
    }
    const onProgress = options.onProgress
    const progress = onProgress
      ? Layer.succeed(Progress, { report: (event) => Effect.sync(() => onProgress(event)) })
      : ProgressSilent
    // Logs on stderr: this process's stdout may be an MCP transport (createServer over stdio).
    const services = projectSourceLayer(options).pipe(Layer.provideMerge(servicesLayer(layerWith(overrides), progress)))
    this.runtime = ManagedRuntime.make(Layer.merge(services, stderrLogger(false)))
    this.caller = toolCaller({ hostCompat: options.allowHostCompat === true })
    if (options.warmPool) {
      const size = options.warmPool
      this.runtime.runFork(Effect.flatMap(VmManager, (vms) => vms.setWarmPool(size)))
    }
  }

  /** Run an effect, turning any failure into a PyroError. */
  private async run<A>(effect: Effect.Effect<A, unknown, OperationServices>): Promise<A> {
    if (this.closed) throw new PyroError("closed", "this Pyro instance is closed")
    const fiber = this.runtime.runFork(Effect.provideService(effect, Caller, this.caller))
    this.inFlight.add(fiber)
    const exit = await Effect.runPromise(Fiber.await(fiber)).finally(() => this.inFlight.delete(fiber))
    if (Exit.isSuccess(exit)) return exit.value
    const failure = Cause.failureOption(exit.cause)
    if (Option.isSome(failure)) throw new PyroError(errorCode(failure.value), errorMessage(failure.value), failure.value)
    throw new PyroError(Cause.isInterruptedOnly(exit.cause) ? "cancelled" : "internal_error", Cause.pretty(exit.cause))
  }

  /** Decode input with the operation's schema, run its handler, return the contract's result. */
  private call<I, O>(op: Operation<I, O>, input: unknown): Promise<O> {
    return this.run(invoke(op, input))
  }

  async listEnvironments() {
    return (await this.call(vmListEnvironments, {})).environments
  }
  async createVm(input: In<typeof vmCreate>) {
    const vm = await this.call(vmCreate, input)
    this.created.add(vm.vm_id)
    return vm
  }
  pullEnvironment(environment: string) {
    return this.run(Effect.flatMap(EnvironmentStore, (s) => s.pull(environment)))
  }
  inspectEnvironment(environment: string) {
    return this.run(Effect.flatMap(EnvironmentStore, (s) => s.inspect(environment)))
  }
  pruneEnvironments() {
    return this.run(Effect.flatMap(EnvironmentStore, (s) => s.prune))
  }

  /**
   * The MCP tools as function definitions (name, description, JSON Schema
   * parameters): every tool, or a profile's (narrowed the way its MCP server shows them).
   */
  toolDefinitions(options: ProfileOption = {}): ReadonlyArray<ToolDefinition> {
    return profileOperations(options.profile ?? "workspace-full").map((op) => ({
      name: op.tool,
      description: op.description,
      parameters: toolJsonSchema(op.input)
    }))
  }

  /**
   * Call a tool by its MCP name with a model's arguments (an object or its JSON
   * text). Failures are thrown as PyroError, with a message fit to hand back to
   * the model. With a profile, only its tools and fields are accepted, as from
   * its MCP server.
   */
  callTool(name: string, args: unknown, options: ProfileOption = {}): Promise<unknown> {
    const op = profileOperations(options.profile ?? "workspace-full").find((o) => o.tool === name)
    if (!op) return Promise.reject(new PyroError("unknown_tool", `no tool named ${name}`))
    let input = args
    if (typeof args === "string") {
      try {
        input = JSON.parse(args)
      } catch {
        return Promise.reject(new PyroError("invalid_input", "arguments are not valid JSON"))
      }
    }
    return op.tool === vmCreate.tool ? this.createVm(input as In<typeof vmCreate>) : this.call(op, input)
  }

  /**
   * An MCP server over this instance's runtime; connect it to any transport.
   * It serves the `workspace-core` profile unless told otherwise, and its
   * workspace_create names the project the options gave (projectPath, repoUrl).
   */
  createServer(options: ProfileOption = {}): Server {
    return createMcpServer((effect) => {
      // Tracked like the SDK's own calls, so close() stops these too.
      const fiber = this.runtime.runFork(Effect.provideService(effect, Caller, this.caller))
      this.inFlight.add(fiber)
      fiber.addObserver(() => this.inFlight.delete(fiber))
      return fiber
    }, {
      version: VERSION,
      ...(options.profile ? { profile: options.profile } : {}),
      onVmCreated: (id) => this.created.add(id)
    })
  }

  /** Delete the VMs this instance created and release everything it holds. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    // Calls in flight end now (their one-shot VMs are cleaned up as they unwind), then our VMs go.
    await Effect.runPromise(
      Fiber.interruptAll([...this.inFlight]).pipe(Effect.timeout(CLOSE_WAIT), Effect.ignore)
    )
    const ids = [...this.created]
    await this.runtime.runPromise(
      Effect.flatMap(VmManager, (vms) => Effect.forEach(ids, (id) => Effect.ignore(vms.remove(id)), { concurrency: 4 }))
    ).catch(() => undefined)
    await Effect.runPromise(Effect.ignore(Effect.timeout(Effect.promise(() => this.runtime.dispose()), CLOSE_WAIT)))
  }
}

// The pass-through methods, one per operation of the table (those written out above excepted).
for (const op of ALL_OPERATIONS) {
  if (op.sdkMethod in Pyro.prototype) continue
  Object.defineProperty(Pyro.prototype, op.sdkMethod, {
    value: function(this: Pyro, input: unknown) {
      return (this as unknown as { call: (op: Operation, input: unknown) => Promise<unknown> }).call(op, expandShorthand(op, input))
    },
    writable: true,
    configurable: true
  })
}
