/**
 * `pyro mcp serve` through a real MCP client from the SDK, over stdio: tool
 * schemas, vm_run, the create/start/exec lifecycle, errors as isError
 * results, the active-VM limit, and cleanup when the server goes away.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest"
import { spawn } from "node:child_process"
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
    args: [pyroBin, "mcp", "serve", "--no-project-source", "--profile", "workspace-full"],
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
  const text = (result.content as Array<{ text: string }>)[0]?.text ?? ""
  // Results that carry command output come as JSON text only; the others also as structuredContent.
  const data = (result.structuredContent ?? (result.isError ? undefined : JSON.parse(text))) as Structured
  return { isError: result.isError === true, data, text }
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
      "workspace_list",
      "workspace_update",
      "workspace_summary",
      "workspace_file_list",
      "workspace_file_read",
      "workspace_file_write",
      "workspace_patch_apply",
      "workspace_export",
      "workspace_diff",
      "service_start",
      "service_list",
      "service_status",
      "service_logs",
      "service_stop",
      "shell_open",
      "shell_read",
      "shell_write",
      "shell_signal",
      "shell_close",
      "snapshot_create",
      "snapshot_list",
      "snapshot_delete",
      "workspace_reset",
      "workspace_fork",
      "workspace_stop",
      "workspace_start",
      "workspace_disk_list",
      "workspace_disk_read",
      "workspace_disk_export",
      "workspace_delete"
    ])
    const run = tools.find((t) => t.name === "vm_run")!
    expect(run.inputSchema.required).toEqual(["environment", "command"])
    expect(run.inputSchema.properties).toMatchObject({
      vcpu_count: { type: "integer", default: 1 },
      mem_mib: { type: "integer", default: 1024 },
      timeout_seconds: { type: "integer", default: 30 },
      ttl_seconds: { type: "integer", default: 600 },
      allow_host_compat: { type: "boolean", default: false },
      // No default shown for network: a client filling defaults in would send network: false beside an egress policy.
      network: { type: "boolean" },
      network_policy: { enum: ["off", "egress", "egress+published-ports"] },
      allow_hosts: { type: "array", items: { type: "string" }, maxItems: 64 }
    })
    expect(run.inputSchema.properties?.["network"]).not.toHaveProperty("default")
    // Results that carry a command's output come once, as text: no structuredContent, so no outputSchema.
    expect(run.outputSchema).toBeUndefined()
    expect(tools.find((t) => t.name === "vm_status")?.outputSchema?.required).toEqual(
      expect.arrayContaining(["vm_id", "state", "execution_mode"])
    )
    expect(run.description).toContain("exit_code 124")
    expect(tools.find((t) => t.name === "vm_status")?.annotations).toMatchObject({ readOnlyHint: true, destructiveHint: false })
    expect(tools.find((t) => t.name === "vm_delete")?.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: true })
  })

  it("vm_run returns its result once, as JSON text", async () => {
    const result = await session.client.callTool({ name: "vm_run", arguments: { environment: "tiny", command: "echo hello; exit 3", mem_mib: 256 } })
    expect(result.isError).toBeFalsy()
    expect(result.structuredContent).toBeUndefined()
    expect(result.content).toHaveLength(1)
    const data = JSON.parse((result.content as Array<{ text: string }>)[0]!.text)
    expect(data).toMatchObject({ stdout: "hello\n", exit_code: 3, environment: "tiny", execution_mode: "guest_virtio_serial" })
    expect(vmDirsUnder(stateDir)).toEqual([])
  })

  it("a command with megabytes of output gets a result sized for a model, and the session goes on", async () => {
    const result = await session.client.callTool({
      name: "vm_run",
      arguments: { environment: "tiny", command: "yes | head -c 4000000; echo done >&2", mem_mib: 256 }
    })
    const message = (result.content as Array<{ text: string }>)[0]!.text
    expect(Buffer.byteLength(message)).toBeLessThan(100_000)
    const data = JSON.parse(message)
    expect(data).toMatchObject({ exit_code: 0, stdout_bytes: 4_000_000, stdout_truncated: true, stderr: "done\n", stderr_truncated: false })
    expect(data.stdout).toMatch(/^y\ny\n/)
    expect(data.stdout).toMatch(/y\n$/)
    expect(data.stdout).toContain("bytes of stdout left out here]")
    // Still connected: the next call works.
    expect((await call(session.client, "vm_list_environments")).isError).toBe(false)
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
    expect(JSON.parse(second.text)).toMatchObject({ sequence: 2, stdout: "kept\n", cwd: "/workspace" })
    // A long output: the result has its head and tail, the guest keeps all of it for later calls.
    const long = JSON.parse((await call(session.client, "workspace_exec", { workspace_id: id, command: "seq 1 500000" })).text)
    expect(long).toMatchObject({ sequence: 3, stdout_truncated: true, stdout_bytes: 3388895 })
    expect(long.stdout).toMatch(/^1\n2\n/)
    expect(long.stdout).toMatch(/\n500000\n$/)
    expect(long.stdout).toContain("all of it is in /run/pyro/commands/3/stdout]")
    const reread = JSON.parse(
      (await call(session.client, "workspace_exec", { workspace_id: id, command: "wc -c < /run/pyro/commands/3/stdout; sed -n 250000p /run/pyro/commands/3/stdout" })).text
    )
    expect(reread.stdout).toBe("3388895\n250000\n")
    const logs = await session.client.callTool({ name: "workspace_logs", arguments: { workspace_id: id } })
    const listing = JSON.parse((logs.content as Array<{ text: string }>)[0]!.text)
    expect(listing.count).toBe(4)
    expect(Buffer.byteLength(JSON.stringify(listing))).toBeLessThan(64 * 1024)
    expect(listing.entries[2].stdout).toContain("/run/pyro/commands/3/stdout")
    expect((await call(session.client, "workspace_delete", { workspace_id: id })).data["deleted"]).toBe(true)
    expect((await call(session.client, "workspace_status", { workspace_id: id })).text).toMatch(/^workspace_not_found/)
  })

  it("writes only the protocol to stdout: a warning goes to stderr while a client talks", async () => {
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [pyroBin, "mcp", "serve"],
      env: { ...process.env, PYRO_STATE_DIR: stateDir, PYRO_IMPORT_ROOTS: "/nonexistent-import-root" } as Record<string, string>,
      stderr: "pipe"
    })
    let stderr = ""
    transport.stderr?.on("data", (b: Buffer) => (stderr += b.toString()))
    const client = new Client({ name: "pyro-test", version: "1.0.0" })
    const errors: Array<unknown> = []
    client.onerror = (e) => errors.push(e)
    await client.connect(transport)
    expect((await call(client, "vm_list_environments")).isError).toBe(false)
    await client.close()
    expect(errors).toEqual([])
    expect(stderr).toContain("PYRO_IMPORT_ROOTS: /nonexistent-import-root does not exist")

    // The same server read raw: every line on stdout is a JSON-RPC message.
    const child = spawn(process.execPath, [pyroBin, "mcp", "serve"], {
      env: { ...process.env, PYRO_STATE_DIR: stateDir, PYRO_IMPORT_ROOTS: "/nonexistent-import-root" },
      stdio: ["pipe", "pipe", "ignore"]
    })
    let stdout = ""
    child.stdout.on("data", (b: Buffer) => (stdout += b.toString()))
    child.stdin.write(`${JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "1" } }
    })}\n`)
    expect(await waitFor(() => stdout.includes("\n"))).toBe(true)
    child.stdin.end()
    await new Promise((resolve) => child.on("close", resolve))
    const lines = stdout.split("\n").filter(Boolean)
    expect(lines.length).toBeGreaterThan(0)
    for (const line of lines) expect(JSON.parse(line)).toMatchObject({ jsonrpc: "2.0" })
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
