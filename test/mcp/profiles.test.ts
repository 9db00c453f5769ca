/**
 * `pyro mcp serve --profile` through the official MCP client: each profile's
 * tool list, its instructions, its narrowed schemas, and a hidden field
 * refused as unknown before anything runs. No VM boots here.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { afterAll, describe, expect, it } from "vitest"
import * as Fs from "node:fs"
import { ALL_OPERATIONS } from "../../src/api/index.js"
import { profileOperations } from "../../src/api/profiles.js"
import { makeStateDir, pyroBin } from "../support/vm.js"

const stateDir = makeStateDir()
afterAll(() => Fs.rmSync(stateDir, { recursive: true, force: true }))

const withServer = async <A>(flags: ReadonlyArray<string>, use: (client: Client) => Promise<A>): Promise<A> => {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [pyroBin, "mcp", "serve", "--no-project-source", ...flags],
    env: { ...process.env, PYRO_STATE_DIR: stateDir } as Record<string, string>,
    stderr: "pipe"
  })
  const client = new Client({ name: "pyro-profiles-test", version: "1.0.0" })
  await client.connect(transport)
  try {
    return await use(client)
  } finally {
    await client.close()
  }
}

const errorText = (result: Awaited<ReturnType<Client["callTool"]>>) => {
  expect(result.isError).toBe(true)
  return (result.content as Array<{ text: string }>)[0]!.text
}

describe("pyro mcp serve --profile", () => {
  it("serves workspace-core by default: the workspace tools, without network, secrets, services or shells", async () => {
    await withServer([], async (client) => {
      const { tools } = await client.listTools()
      expect(tools.map((t) => t.name)).toEqual(profileOperations("workspace-core").map((o) => o.tool))
      expect(tools.map((t) => t.name)).toEqual(expect.arrayContaining(["workspace_create", "workspace_exec", "workspace_diff", "workspace_delete"]))
      expect(tools.map((t) => t.name).filter((n) => /^(vm_run|vm_create|service_|shell_)/.test(n))).toEqual([])
      const create = tools.find((t) => t.name === "workspace_create")!
      for (const field of ["network", "network_policy", "allow_hosts", "secrets"]) {
        expect(create.inputSchema.properties).not.toHaveProperty(field)
      }
      expect(create.description).toContain("without network")
      expect(tools.find((t) => t.name === "workspace_exec")!.inputSchema.properties).not.toHaveProperty("secret_env")
      expect(client.getInstructions()).toContain("workspace_create")
      expect(client.getInstructions()).not.toContain("vm_run")

      // Refused as unknown by the narrowed schema, before any VM is made.
      const refused = await client.callTool({ name: "workspace_create", arguments: { environment: "tiny", network_policy: "egress" } })
      expect(errorText(refused)).toMatch(/^invalid_input: network_policy: is unexpected/)
      const secret = await client.callTool({
        name: "workspace_exec",
        arguments: { workspace_id: "0123456789ab", command: "env", secret_env: { TOKEN: "TOKEN" } }
      })
      expect(errorText(secret)).toMatch(/^invalid_input: secret_env: is unexpected/)
      // A tool outside the profile does not exist for its clients.
      const hidden = await client.callTool({ name: "vm_run", arguments: { environment: "tiny", command: "true" } })
      expect(errorText(hidden)).toMatch(/^unknown_tool: no tool named vm_run in profile workspace-core/)
      expect(Fs.existsSync(`${stateDir}/workspaces`) ? Fs.readdirSync(`${stateDir}/workspaces`) : []).toEqual([])
    })
  })

  it("vm-run serves vm_run alone, whole", async () => {
    await withServer(["--profile", "vm-run"], async (client) => {
      const { tools } = await client.listTools()
      expect(tools.map((t) => t.name)).toEqual(["vm_run"])
      expect(tools[0]!.inputSchema.properties).toHaveProperty("network_policy")
      expect(tools[0]!.description).not.toContain("vm_list_environments")
    })
  })

  it("workspace-full serves every tool, with every field", async () => {
    await withServer(["--profile", "workspace-full"], async (client) => {
      const { tools } = await client.listTools()
      expect(tools.map((t) => t.name)).toEqual(ALL_OPERATIONS.map((o) => o.tool))
      expect(tools.find((t) => t.name === "workspace_create")!.inputSchema.properties).toHaveProperty("secrets")
    })
  })
})
