/** A real MCP client on `pyro mcp serve` over stdio, for tests that drive pyro as a model's host does. */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import * as Fs from "node:fs"
import { pyroBin, qemuProcessesUnder } from "./vm.js"

export type Structured = Record<string, any>

export interface ToolResult {
  readonly isError: boolean
  /** structuredContent, or the JSON text of a tool whose result carries output; undefined for an error. */
  readonly data: Structured
  readonly text: string
}

/**
 * `pyro mcp serve --no-project-source [--profile P]` on `stateDir`, connected;
 * `call` runs a tool with a timeout a VM boot fits in. With `project`, the
 * server starts in that directory and finds its Git checkout itself.
 */
export const connectMcp = async (options: {
  readonly name: string
  readonly stateDir: string
  readonly profile?: string
  readonly env?: Record<string, string>
  readonly project?: string
}) => {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [
      pyroBin, "mcp", "serve",
      ...(options.project ? [] : ["--no-project-source"]),
      ...(options.profile ? ["--profile", options.profile] : [])
    ],
    ...(options.project ? { cwd: options.project } : {}),
    env: { ...process.env, PYRO_STATE_DIR: options.stateDir, ...options.env } as Record<string, string>,
    stderr: "pipe"
  })
  const client = new Client({ name: options.name, version: "1.0.0" })
  await client.connect(transport)
  const call = async (name: string, args: Record<string, unknown> = {}, signal?: AbortSignal): Promise<ToolResult> => {
    const result = await client.callTool({ name, arguments: args }, undefined, { timeout: 300_000, ...(signal ? { signal } : {}) })
    const text = (result.content as Array<{ text: string }>)[0]?.text ?? ""
    const data = (result.structuredContent ?? (result.isError ? undefined : JSON.parse(text))) as Structured
    return { isError: result.isError === true, data, text }
  }
  return { client, call }
}

export type McpTest = Awaited<ReturnType<typeof connectMcp>>

/** After a file's tests: the client closed, any QEMU left on the state directory killed, it and `dirs` removed. */
export const tearDownMcp = async (mcp: McpTest | undefined, stateDir: string, ...dirs: ReadonlyArray<string>) => {
  await mcp?.client.close()
  for (const pid of qemuProcessesUnder(stateDir)) process.kill(pid, "SIGKILL")
  for (const dir of [stateDir, ...dirs]) Fs.rmSync(dir, { recursive: true, force: true })
}
