/**
 * Running on the host is the operator's decision, and only when this host
 * cannot run guests at all. A tool caller (an MCP client here, through the
 * official SDK client over stdio) cannot get there by itself, not even by
 * asking for a VM this host cannot give; and when the operator allowed it,
 * the command sees none of pyro's own environment.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import { afterAll, describe, expect, it } from "vitest"
import { makeStateDir, pyroBin, qemuProcessesUnder, vmDirsUnder } from "../support/vm.js"

const stateDir = makeStateDir()
afterAll(() => {
  for (const pid of qemuProcessesUnder(stateDir)) process.kill(pid, "SIGKILL")
  Fs.rmSync(stateDir, { recursive: true, force: true })
})

/** What the operator's environment holds and no command may see. */
const SECRET = "hunter2-do-not-leak"
const operatorEnv = (extra: Record<string, string> = {}) => ({
  ...process.env,
  PYRO_STATE_DIR: stateDir,
  PYRO_REGISTRY_USERNAME: "operator",
  PYRO_REGISTRY_PASSWORD: SECRET,
  OPENAI_API_KEY: SECRET,
  ...extra
}) as Record<string, string>

const serve = async (flags: ReadonlyArray<string>, env: Record<string, string> = {}) => {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [pyroBin, "mcp", "serve", "--no-project-source", "--profile", "workspace-full", ...flags],
    env: operatorEnv(env),
    stderr: "pipe"
  })
  const client = new Client({ name: "pyro-security-test", version: "1.0.0" })
  await client.connect(transport)
  return client
}

const callText = async (client: Client, args: Record<string, unknown>) => {
  const result = await client.callTool({ name: "vm_run", arguments: args })
  return { isError: result.isError === true, text: (result.content as Array<{ text: string }>)[0]?.text ?? "" }
}

const cli = (args: ReadonlyArray<string>, env: Record<string, string>) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [pyroBin, ...args], { env: operatorEnv(env), stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (b: Buffer) => (stdout += b.toString()))
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString()))
    child.on("close", (code) => resolve({ code, stdout, stderr }))
  })

const NO_QEMU = { PYRO_QEMU: "/nonexistent/qemu-system-x86_64" }

describe("host fallback", () => {
  it("a tool caller cannot reach the host: the issue's call is refused before anything starts", async () => {
    const client = await serve([])
    try {
      const r = await callText(client, { environment: "tiny", mem_mib: 65536, allow_host_compat: true, command: "env" })
      expect(r.isError).toBe(true)
      expect(r.text).toMatch(/^invalid_input: /)
      expect(r.text).toContain(`mem_mib: 65536 MiB is more memory than this host has`)
      expect(r.text).toContain("allow_host_compat: running commands on the host needs the operator's permission")
      expect(r.text).not.toContain(SECRET)
      // A size this host can give, still without the operator's grant.
      const small = await callText(client, { environment: "tiny", mem_mib: 256, allow_host_compat: true, command: "env" })
      expect(small.text).toMatch(/^invalid_input: allow_host_compat/)
      const cores = await callText(client, { environment: "tiny", vcpu_count: Os.availableParallelism() + 1, command: "true" })
      expect(cores.text).toMatch(/^invalid_input: vcpu_count: \d+ is more vCPUs than this host has cores/)
      expect(vmDirsUnder(stateDir)).toEqual([])
    } finally {
      await client.close()
    }
  })

  it("even granted, one failed boot is reported, never run on the host", async () => {
    const client = await serve(["--allow-host-compat"], { PYRO_BOOT_TIMEOUT_SECONDS: "0.05", PYRO_COLD_BOOT: "1" })
    try {
      const r = await callText(client, { environment: "tiny", mem_mib: 256, allow_host_compat: true, command: "echo ran" })
      expect(r.isError).toBe(true)
      expect(r.text).toMatch(/^boot_failed: /)
      expect(r.text).not.toContain("host_compat")
    } finally {
      await client.close()
    }
    expect(qemuProcessesUnder(stateDir)).toEqual([])
  })

  it("granted, on a host that cannot run guests, the command runs there with a minimal environment", async () => {
    const client = await serve(["--allow-host-compat"], NO_QEMU)
    try {
      const r = await callText(client, { environment: "tiny", allow_host_compat: true, command: "env; pwd" })
      expect(r.isError).toBe(false)
      const result = JSON.parse(r.text)
      expect(result.execution_mode).toBe("host_compat")
      expect(result.stdout).toContain("PATH=/usr/local/bin:/usr/bin:/bin")
      expect(result.stdout).not.toContain(SECRET)
      expect(result.stdout).not.toMatch(/^PYRO_/m)
      // Without the caller asking, the missing VMM is an error like any other.
      const asked = await callText(client, { environment: "tiny", command: "true" })
      expect(asked.text).toMatch(/^boot_failed: .*not found/)
    } finally {
      await client.close()
    }
  })

  it("a VM made to run on the host by a granted server runs nowhere for a caller without the grant", async () => {
    const granted = await serve(["--allow-host-compat"], NO_QEMU)
    const other = await serve([], NO_QEMU)
    try {
      const created = await granted.callTool({ name: "vm_create", arguments: { environment: "tiny", allow_host_compat: true } })
      const vmId = (created.structuredContent as { vm_id: string }).vm_id
      const started = await granted.callTool({ name: "vm_start", arguments: { vm_id: vmId } })
      expect(started.structuredContent).toMatchObject({ state: "started", execution_mode: "host_compat" })
      // Starting a started VM does nothing (nothing runs); a command in it is refused.
      expect((await other.callTool({ name: "vm_start", arguments: { vm_id: vmId } })).isError).toBeFalsy()
      const r = await other.callTool({ name: "vm_exec", arguments: { vm_id: vmId, command: "env" } })
      const text = (r.content as Array<{ text: string }>)[0]!.text
      expect(r.isError).toBe(true)
      expect(text).toMatch(new RegExp(`^invalid_input: vm_id: ${vmId} runs its commands on the host`))
      expect(text).not.toContain(SECRET)
    } finally {
      await other.close()
      await granted.close()
    }
  })

  it("the CLI is the operator: --allow-host-compat runs on a host without QEMU, never after a failed boot", async () => {
    const fallback = await cli(["run", "tiny", "--allow-host-compat", "--", "env"], NO_QEMU)
    expect(fallback.code).toBe(0)
    expect(fallback.stdout).toContain("PATH=")
    expect(fallback.stdout).not.toContain(SECRET)
    const failedBoot = await cli(["run", "tiny", "--allow-host-compat", "--mem-mib", "256", "--", "echo", "ran"], {
      PYRO_BOOT_TIMEOUT_SECONDS: "0.05",
      PYRO_COLD_BOOT: "1"
    })
    expect(failedBoot.code).toBe(1)
    expect(failedBoot.stdout).not.toContain("ran")
    expect(failedBoot.stderr).toMatch(/did not answer within/)
  })
})
