/**
 * The Promise facade over pyro's services, for programs that are not written
 * with Effect: OpenAI tool loops, LangChain.js, the Vercel AI SDK. One
 * instance owns one runtime; `close()` deletes the VMs it created and stops
 * what is in flight.
 */
import type { Server } from "@modelcontextprotocol/sdk/server/index.js"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Path from "node:path"
import { invoke } from "../api/handlers.js"
import { VERSION } from "../cli/version.js"
import { errorCode, errorMessage } from "../contract/errors.js"
import * as Ops from "../contract/operations.js"
import { servicesLayer } from "../layers/App.js"
import { stderrLogger } from "../layers/StderrLogger.js"
import { clampOutputBudget, layerWith } from "../layers/PyroConfigLive.js"
import { createMcpServer } from "../mcp/server.js"
import { toolJsonSchema } from "../mcp/toolSchema.js"
import { Caller, toolCaller } from "../services/Caller.js"
import { EnvironmentStore } from "../services/EnvironmentStore.js"
import { Progress, type ProgressEvent, ProgressSilent } from "../services/Progress.js"
import type { PyroConfigShape } from "../services/PyroConfig.js"
import { VmManager } from "../services/VmManager.js"
import type { WorkspaceManager } from "../services/WorkspaceManager.js"

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
   * Keep this many VMs ready per vm_run shape (environment, sizing, network),
   * so runInVm answers in milliseconds; 0 (default) boots each on demand.
   * They are killed by close().
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
  /** Progress of long work (environment builds and downloads); silent by default. */
  readonly onProgress?: (event: ProgressEvent) => void
}

/** Every failure the SDK reports: `code` is stable (see docs/public-contract.md). */
export class PyroError extends Error {
  constructor(readonly code: string, message: string, override readonly cause?: unknown) {
    super(message)
    this.name = "PyroError"
  }
}

/** A tool as OpenAI-style function calling and the Vercel AI SDK describe it. */
export interface ToolDefinition {
  readonly name: string
  readonly description: string
  readonly parameters: Record<string, unknown>
}

type In<O> = O extends Ops.Operation<any, any> ? Schema.Schema.Encoded<O["input"]> : never
type Out<O> = O extends Ops.Operation<any, infer A> ? A : never
/** close() never waits longer than this for any one step (a VM's own release kills it regardless). */
const CLOSE_WAIT = "15 seconds"

type VmRef = string | { readonly vm_id: string }

const vmIdOf = (ref: VmRef) => ({ vm_id: typeof ref === "string" ? ref : ref.vm_id })
type WorkspaceRef = string | { readonly workspace_id: string }
const workspaceIdOf = (ref: WorkspaceRef) => ({ workspace_id: typeof ref === "string" ? ref : ref.workspace_id })

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
      ...(options.importRoots ? { importRoots: options.importRoots.map((root) => Path.resolve(root)) } : {})
    }
    const onProgress = options.onProgress
    const progress = onProgress
      ? Layer.succeed(Progress, { report: (event) => Effect.sync(() => onProgress(event)) })
      : ProgressSilent
    // Logs on stderr: this process's stdout may be an MCP transport (createServer over stdio).
    this.runtime = ManagedRuntime.make(Layer.merge(servicesLayer(layerWith(overrides), progress), stderrLogger(false)))
    this.caller = toolCaller({ hostCompat: options.allowHostCompat === true })
    if (options.warmPool) {
      const size = options.warmPool
      this.runtime.runFork(Effect.flatMap(VmManager, (vms) => vms.setWarmPool(size)))
    }
  }

  /** Run an effect, turning any failure into a PyroError. */
  private async run<A>(effect: Effect.Effect<A, unknown, VmManager | WorkspaceManager | EnvironmentStore>): Promise<A> {
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
  private call<O extends Ops.Operation<any, any>>(op: O, input: unknown): Promise<Out<O>> {
    return this.run(invoke(op, input) as Effect.Effect<Out<O>, unknown, VmManager | WorkspaceManager>)
  }

  runInVm(input: In<typeof Ops.vmRun>) {
    return this.call(Ops.vmRun, input)
  }
  async listEnvironments() {
    return (await this.call(Ops.vmListEnvironments, {})).environments
  }
  async createVm(input: In<typeof Ops.vmCreate>) {
    const vm = await this.call(Ops.vmCreate, input)
    this.created.add(vm.vm_id)
    return vm
  }
  startVm(vm: VmRef) {
    return this.call(Ops.vmStart, vmIdOf(vm))
  }
  execVm(input: In<typeof Ops.vmExec>) {
    return this.call(Ops.vmExec, input)
  }
  stopVm(vm: VmRef) {
    return this.call(Ops.vmStop, vmIdOf(vm))
  }
  deleteVm(vm: VmRef) {
    return this.call(Ops.vmDelete, vmIdOf(vm))
  }
  statusVm(vm: VmRef) {
    return this.call(Ops.vmStatus, vmIdOf(vm))
  }
  networkInfoVm(vm: VmRef) {
    return this.call(Ops.vmNetworkInfo, vmIdOf(vm))
  }
  reapExpired() {
    return this.call(Ops.vmReapExpired, {})
  }
  createWorkspace(input: In<typeof Ops.workspaceCreate>) {
    return this.call(Ops.workspaceCreate, input)
  }
  pushWorkspaceSync(input: In<typeof Ops.workspaceSyncPush>) {
    return this.call(Ops.workspaceSyncPush, input)
  }
  execWorkspace(input: In<typeof Ops.workspaceExec>) {
    return this.call(Ops.workspaceExec, input)
  }
  statusWorkspace(workspace: WorkspaceRef) {
    return this.call(Ops.workspaceStatus, workspaceIdOf(workspace))
  }
  logsWorkspace(workspace: WorkspaceRef) {
    return this.call(Ops.workspaceLogs, workspaceIdOf(workspace))
  }
  deleteWorkspace(workspace: WorkspaceRef) {
    return this.call(Ops.workspaceDelete, workspaceIdOf(workspace))
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

  /** The MCP tools as function definitions (name, description, JSON Schema parameters). */
  toolDefinitions(): ReadonlyArray<ToolDefinition> {
    return Ops.ALL_OPERATIONS.map((op) => ({ name: op.tool, description: op.description, parameters: toolJsonSchema(op.input) }))
  }

  /**
   * Call a tool by its MCP name with a model's arguments (an object or its JSON
   * text). Failures are thrown as PyroError, with a message fit to hand back to
   * the model.
   */
  callTool(name: string, args: unknown): Promise<unknown> {
    const op = Ops.ALL_OPERATIONS.find((o) => o.tool === name)
    if (!op) return Promise.reject(new PyroError("unknown_tool", `no tool named ${name}`))
    let input = args
    if (typeof args === "string") {
      try {
        input = JSON.parse(args)
      } catch {
        return Promise.reject(new PyroError("invalid_input", "arguments are not valid JSON"))
      }
    }
    return op === Ops.vmCreate ? this.createVm(input as In<typeof Ops.vmCreate>) : this.call(op, input)
  }

  /** An MCP server over this instance's runtime; connect it to any transport. */
  createServer(): Server {
    return createMcpServer((effect) => {
      // Tracked like the SDK's own calls, so close() stops these too.
      const fiber = this.runtime.runFork(Effect.provideService(effect, Caller, this.caller))
      this.inFlight.add(fiber)
      fiber.addObserver(() => this.inFlight.delete(fiber))
      return fiber
    }, {
      version: VERSION,
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
