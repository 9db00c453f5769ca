/** The MCP profile table: every entry resolves, narrowed fields are gone from the schema and refused on decode. */
import { describe, expect, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { ALL_OPERATIONS } from "../../src/api/index.js"
import { formatInputError } from "../../src/contract/common.js"
import { MCP_PROFILES, PROFILES, profileOperations } from "../../src/api/profiles.js"
import { toolJsonSchema } from "../../src/mcp/toolSchema.js"

const served = (profile: (typeof MCP_PROFILES)[number], name: string) => {
  const op = profileOperations(profile).find((o) => o.tool === name)
  if (!op) throw new Error(`${name} is not in ${profile}`)
  return op
}

describe("MCP profiles", () => {
  it("resolve without error, and workspace-full is the whole table", () => {
    for (const profile of MCP_PROFILES) expect(profileOperations(profile).length).toBeGreaterThan(0)
    expect(profileOperations("workspace-full")).toBe(ALL_OPERATIONS)
    expect(profileOperations("vm-run").map((o) => o.tool)).toEqual(["vm_run"])
  })

  it("workspace-core has no vm lifecycle, secrets, network, services or shells", () => {
    const names = profileOperations("workspace-core").map((o) => o.tool)
    expect(names).toContain("workspace_create")
    expect(names).toContain("workspace_exec")
    expect(names.filter((n) => /^(vm_(?!list_environments)|service_|shell_|snapshot_|workspace_disk_)/.test(n))).toEqual([])
    const schemas = profileOperations("workspace-core").map((o) => JSON.stringify(toolJsonSchema(o.input)))
    for (const field of ["secrets", "secret_env", "network_policy", "allow_hosts", "\"network\"", "published_ports"]) {
      expect(schemas.filter((s) => s.includes(field))).toEqual([])
    }
  })

  it("names every tool once per profile", () => {
    for (const spec of Object.values(PROFILES)) {
      if (spec.tools === "every") continue
      const names = spec.tools.map((t) => t.tool)
      expect(new Set(names).size).toBe(names.length)
    }
  })

  it("a narrowed field is refused as unknown; the rest decodes as before, defaults included", () => {
    const decode = (name: string, raw: unknown) =>
      Schema.decodeUnknownEither(served("workspace-core", name).input)(raw, { errors: "all", onExcessProperty: "error" })
    const refused = decode("workspace_create", { environment: "tiny", network_policy: "egress" })
    expect(Either.isLeft(refused) && formatInputError(refused.left)).toMatch(/^network_policy: is unexpected/)
    expect(decode("workspace_create", { environment: "tiny" })).toEqual(
      Either.right({ environment: "tiny", vcpu_count: 1, mem_mib: 1024, ttl_seconds: 600, allow_host_compat: false })
    )
    const secret = decode("workspace_exec", { workspace_id: "0123456789ab", command: "env", secret_env: { A: "A" } })
    expect(Either.isLeft(secret) && formatInputError(secret.left)).toMatch(/^secret_env: is unexpected/)
  })

  it("descriptions in a narrow profile do not point at tools it hides", () => {
    const tools = new Set(ALL_OPERATIONS.map((o) => o.tool))
    const hiddenIn = (text: string, names: ReadonlySet<string>) =>
      [...text.matchAll(/\b(?:vm|workspace|service|shell|snapshot)_[a-z_]+/g)].map((m) => m[0])
        .filter((n) => tools.has(n) && !names.has(n))
    for (const profile of ["vm-run", "workspace-core"] as const) {
      const names = new Set(profileOperations(profile).map((o) => o.tool))
      for (const op of profileOperations(profile)) {
        expect({ tool: op.tool, hidden: hiddenIn(op.description, names) }).toEqual({ tool: op.tool, hidden: [] })
      }
      expect(hiddenIn(PROFILES[profile].instructions, names)).toEqual([])
    }
  })
})
