/**
 * `pyro mcp serve` through a real MCP client from the SDK, over stdio: tool
 * schemas, vm_run, the create/start/exec lifecycle, errors as isError
 * results, the active-VM limit, and cleanup when the server goes away.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest"
import * as Fs from "node:fs"
import { makeStateDir, pyroBin, qemuProcessesUnder, vmDirsUnder } from "../support/vm.js"

const stateDir = makeStateDir()
afterAll(() => {
  for (const pid of qemuProcessesUnder(stateDir)) process.kill(pid, "SIGKILL")
  Fs.rmSync(stateDir, { recursive: true, force: true })
})

const waitFor = async (check: () => boolean, timeoutMs = 15_000) => {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) return false
    await new Promise((r) => setTimeout(r, 50))
  }
  return true
}

const connect = async () => {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [pyroBin, "mcp", "serve"],
    env: { ...process.env, PYRO_STATE_DIR: stateDir, PYRO_MAX_ACTIVE_VMS: "2" } as Record<string, string>,
    stderr: "pipe"
  })
  const client = new Client({ name: "pyro-test", version: "1.0.0" })
  await client.connect(transport)
  return { client, transport }
}

type Structured = Record<string, any>
const call = async (client: Client, name: string, args: Record<string, unknown> = {}) => {
  const result = await client.callTool({ name, arguments: args })
  return { isError: result.isError === true, data: result.structuredContent as Structured, text: (result.content as Array<{ text: string }>)[0]?.text ?? "" }
}

describe("pyro mcp serve", () => {
  let session: Awaited<ReturnType<typeof connect>>
  beforeEach(async () => {
    session = await connect()
  })
  afterEach(async () => {
    await session.client.close()
  })

  it("lists the vm_* tools with schemas, descriptions and annotations", async () => {
    const { tools } = await session.client.listTools()
    expect(tools.map((t) => t.name)).toEqual([
      "vm_run",
      "vm_list_environments",
      "vm_create",
      "vm_start",
      "vm_exec",
      "vm_stop",
      "vm_delete",
      "vm_status",
      "vm_network_info",
      "vm_reap_expired",
      "workspace_create",
      "workspace_sync_push",
      "workspace_exec",
      "workspace_status",
      "workspace_logs",
      "workspace_delete"
    ])
    const run = tools.find((t) => t.name === "vm_run")!
    expect(run.inputSchema.required).toEqual(["environment", "command"])
    expect(run.inputSchema.properties).toMatchObject({
      vcpu_count: { type: "integer", default: 1 },
      mem_mib: { type: "integer", default: 1024 },
      timeout_seconds: { type: "integer", default: 30 },
      ttl_seconds: { type: "integer", default: 600 },
      network: { type: "boolean", default: false },
      allow_host_compat: { type: "boolean", default: false }
    })
    expect(run.outputSchema?.required).toEqual(expect.arrayContaining(["stdout", "stderr", "exit_code", "duration_ms", "vm_id", "environment", "execution_mode"]))
    expect(run.description).toContain("exit_code 124")
    expect(tools.find((t) => t.name === "vm_status")?.annotations).toMatchObject({ readOnlyHint: true, destructiveHint: false })
    expect(tools.find((t) => t.name === "vm_delete")?.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: true })
  })

  it("vm_run returns structured content and a text rendering", async () => {
    const r = await call(session.client, "vm_run", { environment: "tiny", command: "echo hello; exit 3", mem_mib: 256 })
    expect(r.isError).toBe(false)
    expect(r.data).toMatchObject({ stdout: "hello\n", exit_code: 3, environment: "tiny", execution_mode: "guest_virtio_serial" })
    expect(JSON.parse(r.text)).toEqual(r.data)
    expect(vmDirsUnder(stateDir)).toEqual([])
  })

  it("runs the create/start/exec lifecycle, and exec deletes the VM", async () => {
    const created = await call(session.client, "vm_create", { environment: "tiny", mem_mib: 256 })
    expect(created.data).toMatchObject({ state: "created", vcpu_count: 1, mem_mib: 256 })
    const id = created.data["vm_id"]
    expect((await call(session.client, "vm_start", { vm_id: id })).data["state"]).toBe("started")
    expect((await call(session.client, "vm_status", { vm_id: id })).data).toMatchObject({ state: "started", network_enabled: false })
    const exec = await call(session.client, "vm_exec", { vm_id: id, command: ["sh", "-c", "echo $((6*7))"] })
    expect(exec.data).toMatchObject({ stdout: "42\n", exit_code: 0, deleted: true })
    const gone = await call(session.client, "vm_status", { vm_id: id })
    expect(gone.isError).toBe(true)
    expect(gone.text).toMatch(/^vm_not_found: no VM with vm_id/)
  })

  it("runs a workspace through its tools", async () => {
    const created = await call(session.client, "workspace_create", { environment: "tiny", mem_mib: 256 })
    expect(created.data).toMatchObject({ state: "started", workspace_path: "/workspace", workspace_seed: { mode: "empty" } })
    const id = created.data["workspace_id"]
    await call(session.client, "workspace_exec", { workspace_id: id, command: "echo kept > f" })
    const second = await call(session.client, "workspace_exec", { workspace_id: id, command: ["cat", "f"] })
    expect(second.data).toMatchObject({ sequence: 2, stdout: "kept\n", cwd: "/workspace" })
    expect((await call(session.client, "workspace_logs", { workspace_id: id })).data["count"]).toBe(2)
    expect((await call(session.client, "workspace_delete", { workspace_id: id })).data["deleted"]).toBe(true)
    expect((await call(session.client, "workspace_status", { workspace_id: id })).text).toMatch(/^workspace_not_found/)
  })

  it("answers bad input and unknown ids with isError results", async () => {
    const bad = await call(session.client, "vm_run", { environment: "tiny", command: "true", vcpu_count: 0, bogus: 1 })
    expect(bad.isError).toBe(true)
    expect(bad.text).toMatch(/^invalid_input: /)
    expect(bad.text).toContain("vcpu_count")
    expect(bad.text).toContain("bogus")
    const missing = await call(session.client, "vm_run", { command: "true" })
    expect(missing.text).toContain("environment")
    const unknownEnv = await call(session.client, "vm_run", { environment: "nope", command: "true" })
    expect(unknownEnv.text).toMatch(/^environment_not_found: .*debian:12/)
    const unknownId = await call(session.client, "vm_start", { vm_id: "0123456789ab" })
    expect(unknownId.text).toMatch(/^vm_not_found/)
    const malformedId = await call(session.client, "vm_start", { vm_id: "../etc" })
    expect(malformedId.text).toMatch(/^invalid_input: vm_id/)
  })

  it("enforces the active-VM limit", async () => {
    const a = await call(session.client, "vm_create", { environment: "tiny" })
    const b = await call(session.client, "vm_create", { environment: "tiny" })
    const c = await call(session.client, "vm_create", { environment: "tiny" })
    expect(c.isError).toBe(true)
    expect(c.text).toMatch(/^vm_limit_reached: too many active VMs: 2 of 2/)
    await call(session.client, "vm_delete", { vm_id: a.data["vm_id"] })
    await call(session.client, "vm_delete", { vm_id: b.data["vm_id"] })
  })

  it("deletes its VMs when the client goes away", async () => {
    const created = await call(session.client, "vm_create", { environment: "tiny", mem_mib: 256 })
    await call(session.client, "vm_start", { vm_id: created.data["vm_id"] })
    expect(qemuProcessesUnder(stateDir).length).toBe(1)
    await session.client.close()
    expect(await waitFor(() => qemuProcessesUnder(stateDir).length === 0 && vmDirsUnder(stateDir).length === 0)).toBe(true)
    session = await connect()
  })

  it("leaves no VM process behind when killed with SIGKILL mid-run", async () => {
    const created = await call(session.client, "vm_create", { environment: "tiny", mem_mib: 256 })
    await call(session.client, "vm_start", { vm_id: created.data["vm_id"] })
    const running = session.client.callTool({ name: "vm_run", arguments: { environment: "tiny", command: "sleep 60", mem_mib: 256 } })
      .catch(() => undefined)
    expect(await waitFor(() => qemuProcessesUnder(stateDir).length === 2, 30_000)).toBe(true)
    process.kill(session.transport.pid!, "SIGKILL")
    await running
    expect(await waitFor(() => qemuProcessesUnder(stateDir).length === 0)).toBe(true)
    // The next server sweeps what the killed one left.
    session = await connect()
    await call(session.client, "vm_list_environments")
    expect(vmDirsUnder(stateDir)).toEqual([])
  })
})
