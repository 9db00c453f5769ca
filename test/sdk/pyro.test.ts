/** The Promise facade as a package user gets it (dist/sdk.js), against real VMs. */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js"
import { afterAll, describe, expect, it } from "vitest"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { makeStateDir, qemuProcessesUnder, repoRoot, vmDirsUnder } from "../support/vm.js"

const { Pyro, PyroError } = (await import(Path.join(repoRoot, "dist", "sdk.js"))) as typeof import("../../src/entrypoints/sdk.js")

const stateDir = makeStateDir()
const pyro = new Pyro({ stateDir, maxActiveVms: 3 })
afterAll(async () => {
  await pyro.close()
  for (const pid of qemuProcessesUnder(stateDir)) process.kill(pid, "SIGKILL")
  Fs.rmSync(stateDir, { recursive: true, force: true })
})

describe("Pyro (SDK)", () => {
  it("runInVm runs one command in a fresh VM", async () => {
    const result = await pyro.runInVm({ environment: "tiny", command: ["echo", "sdk"], mem_mib: 256 })
    expect(result).toMatchObject({ stdout: "sdk\n", exit_code: 0, execution_mode: "guest_virtio_serial" })
    expect(vmDirsUnder(stateDir)).toEqual([])
  })

  it("lists environments and rejects bad input with a PyroError code", async () => {
    expect((await pyro.listEnvironments()).map((e) => e.name)).toContain("debian:12")
    const bad = await pyro.runInVm({ environment: "tiny", command: "true", mem_mib: 1 }).catch((e) => e)
    expect(bad).toBeInstanceOf(PyroError)
    expect(bad.code).toBe("invalid_input")
    const unknown = await pyro.statusVm("0123456789ab").catch((e) => e)
    expect(unknown.code).toBe("vm_not_found")
  })

  it("drives the lifecycle, and exposes the tools for function calling", async () => {
    const vm = await pyro.createVm({ environment: "tiny", mem_mib: 256 })
    expect((await pyro.startVm(vm.vm_id)).state).toBe("started")
    expect((await pyro.networkInfoVm(vm)).network_enabled).toBe(false)
    const exec = await pyro.execVm({ vm_id: vm.vm_id, command: "uname -s" })
    expect(exec).toMatchObject({ stdout: "Linux\n", deleted: true })

    const tools = pyro.toolDefinitions()
    expect(tools.map((t) => t.name)).toContain("vm_run")
    expect(pyro.toolDefinitions({ profile: "vm-run" }).map((t) => t.name)).toEqual(["vm_run"])
    const core = pyro.toolDefinitions({ profile: "workspace-core" })
    expect(core.find((t) => t.name === "workspace_exec")?.parameters["properties"]).not.toHaveProperty("secret_env")
    const narrowed = await pyro.callTool("workspace_exec", { workspace_id: "0123456789ab", command: "env", secret_env: {} }, {
      profile: "workspace-core"
    }).catch((e) => e)
    expect(narrowed).toMatchObject({ code: "invalid_input", message: expect.stringContaining("secret_env: is unexpected") })
    expect(tools.find((t) => t.name === "vm_run")?.parameters).toMatchObject({ type: "object", required: ["environment", "command"] })
    const viaTool = await pyro.callTool("vm_run", JSON.stringify({ environment: "tiny", command: "echo tool", mem_mib: 256 }))
    expect(viaTool).toMatchObject({ stdout: "tool\n" })
  })

  it("close() stops calls in flight and cleans up their VMs", async () => {
    const own = new Pyro({ stateDir })
    const pending = own.runInVm({ environment: "tiny", command: "sleep 60", mem_mib: 248 }).catch((e) => e)
    const deadline = Date.now() + 30_000
    while (qemuProcessesUnder(stateDir).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
    await own.close()
    expect((await pending).code).toBe("cancelled")
    expect(qemuProcessesUnder(stateDir)).toEqual([])
    expect(vmDirsUnder(stateDir)).toEqual([])
  })

  it("serves MCP over any transport, and close() deletes the VMs it created", async () => {
    // workspace-core by default, like `pyro mcp serve`.
    const core = new Client({ name: "sdk-test", version: "1.0.0" })
    const [coreClientSide, coreServerSide] = InMemoryTransport.createLinkedPair()
    await pyro.createServer().connect(coreServerSide)
    await core.connect(coreClientSide)
    expect((await core.listTools()).tools.map((t) => t.name)).not.toContain("vm_create")
    await core.close()

    const server = pyro.createServer({ profile: "workspace-full" })
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair()
    await server.connect(serverSide)
    const client = new Client({ name: "sdk-test", version: "1.0.0" })
    await client.connect(clientSide)
    const created = await client.callTool({ name: "vm_create", arguments: { environment: "tiny", mem_mib: 256 } })
    const vmId = (created.structuredContent as { vm_id: string }).vm_id
    await client.callTool({ name: "vm_start", arguments: { vm_id: vmId } })
    expect(qemuProcessesUnder(stateDir).length).toBe(1)
    await client.close()

    const other = new Pyro({ stateDir })
    expect((await other.statusVm(vmId)).state).toBe("started")
    await other.close()

    await pyro.close()
    expect(qemuProcessesUnder(stateDir)).toEqual([])
    expect(vmDirsUnder(stateDir)).toEqual([])
    const closed = await pyro.listEnvironments().catch((e) => e)
    expect(closed.code).toBe("closed")
  })
})
