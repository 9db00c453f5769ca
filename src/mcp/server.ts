/**
 * The MCP server: one tool per operation of the contract, over any MCP
 * transport (stdio for `pyro mcp serve`). Input is decoded with the
 * operation's schema; bad input and failures come back as `isError` results
 * with a message a model can act on, never as protocol errors.
 */
import { Server } from "@modelcontextprotocol/sdk/server/index.js"
import { CallToolRequestSchema, type CallToolResult, ListToolsRequestSchema } from "@modelcontextprotocol/sdk/types.js"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Fiber from "effect/Fiber"
import * as Schema from "effect/Schema"
import { invoke, type Operation, vmCreate } from "../api/index.js"
import { describedFor, type OperationServices } from "../api/operation.js"
import { DEFAULT_MCP_PROFILE, type McpProfile, PROFILES, profileOperations } from "../api/profiles.js"
import { errorCode, errorMessage } from "../contract/errors.js"
import { ProjectSource, type ProjectSourceShape } from "../services/ProjectSource.js"
import { toolJsonSchema } from "./toolSchema.js"

export const SERVER_NAME = "pyro"

export interface McpServerOptions {
  readonly version: string
  /** Which tools are served, and how narrowly (default workspace-core; src/api/profiles.ts). */
  readonly profile?: McpProfile
  /**
   * The project workspace_create seeds from without seed_path, provided to
   * every call and named in its description. Without it, the one in the
   * owner's runtime (the SDK's), read at the first tools/list.
   */
  readonly projectSource?: ProjectSourceShape
  /** Called with each VM an operation creates, so the host can clean them up at shutdown. */
  readonly onVmCreated?: (vmId: string) => void
}

const errorResult = (code: string, message: string): CallToolResult => ({
  isError: true,
  content: [{ type: "text", text: `${code}: ${message}` }]
})

/**
 * The result as JSON text: beside structuredContent for clients that show
 * only text, or alone for results that carry a command's output. Compact:
 * indentation would cost a model tokens for nothing.
 */
const textOf = (value: unknown) => JSON.stringify(value)

/** Starts an operation as a fiber: the server's owner decides its runtime and what interrupts it at shutdown. */
export type RunFork = <A, E>(effect: Effect.Effect<A, E, OperationServices>) => Fiber.RuntimeFiber<A, unknown>

export const createMcpServer = (runFork: RunFork, options: McpServerOptions): Server => {
  const profile = options.profile ?? DEFAULT_MCP_PROFILE
  const served = profileOperations(profile)
  const operations = new Map<string, Operation>(served.map((op) => [op.tool, op]))
  const server = new Server(
    { name: SERVER_NAME, version: options.version },
    {
      capabilities: { tools: {} },
      instructions: PROFILES[profile].instructions
    }
  )

  const given = options.projectSource
  const withProject = <A, E>(effect: Effect.Effect<A, E, OperationServices>) =>
    given === undefined ? effect : Effect.provideService(effect, ProjectSource, given)
  // Descriptions name the project source the calls will see.
  let projectSource: Promise<ProjectSourceShape> | undefined
  const project = () => (projectSource ??= given !== undefined
    ? Promise.resolve(given)
    : Effect.runPromise(Fiber.join(runFork(ProjectSource))))

  server.setRequestHandler(ListToolsRequestSchema, async () => {
    const source = await project()
    return {
      tools: served.map((op) => ({
        name: op.tool,
        title: op.annotations.title,
        description: describedFor(op, source),
        inputSchema: toolJsonSchema(op.input) as { type: "object" },
        ...(op.carriesOutput ? {} : { outputSchema: toolJsonSchema(op.output) as { type: "object" } }),
        annotations: op.annotations
      }))
    }
  })

  server.setRequestHandler(CallToolRequestSchema, async (request, extra): Promise<CallToolResult> => {
    const op = operations.get(request.params.name)
    if (!op) {
      return errorResult("unknown_tool", `no tool named ${request.params.name} in profile ${profile}; tools: ${[...operations.keys()].join(", ")}`)
    }
    const program = Effect.gen(function*() {
      const output = yield* invoke(op, request.params.arguments)
      if (op.tool === vmCreate.tool) options.onVmCreated?.((output as typeof vmCreate.output.Type).vm_id)
      return yield* Schema.encode(op.output)(output).pipe(Effect.orDie)
    })
    const fiber = runFork(withProject(program))
    // A cancelled request interrupts its operation, which cleans up its VM.
    const cancel = () => Effect.runFork(Fiber.interrupt(fiber))
    extra.signal.addEventListener("abort", cancel, { once: true })
    const exit = await Effect.runPromise(Fiber.await(fiber))
    extra.signal.removeEventListener("abort", cancel)
    if (Exit.isSuccess(exit)) {
      const text = { type: "text" as const, text: textOf(exit.value) }
      // A command's output travels once: in the text alone, for the tools whose results carry it.
      return op.carriesOutput ? { content: [text] } : { content: [text], structuredContent: exit.value as Record<string, unknown> }
    }
    if (Cause.isInterruptedOnly(exit.cause)) return errorResult("cancelled", "the request was cancelled; a one-shot VM it started was cleaned up")
    const failure = Cause.failureOption(exit.cause)
    if (Option.isSome(failure)) {
      return errorResult(errorCode(failure.value), errorMessage(failure.value))
    }
    return errorResult("internal_error", Cause.pretty(exit.cause).split("\n")[0] ?? "unexpected failure")
  })

  return server
}
