/**
 * MCP tool profiles: which tools a model is shown, and how much of each.
 * A profile narrows the model-facing surface without changing what the
 * operations do: it lists its tools, may hide optional input fields (the
 * narrowed schema then refuses them as unknown, so the handler never sees
 * them), and may give a tool a description that fits the narrower surface.
 * `pyro mcp serve --profile`, `Pyro.createServer({ profile })` and
 * `Pyro.toolDefinitions({ profile })` all read this one table.
 */
import * as Schema from "effect/Schema"
import * as SchemaAST from "effect/SchemaAST"
import { ALL_OPERATIONS } from "./index.js"
import type { Operation } from "./operation.js"

export const MCP_PROFILES = ["vm-run", "workspace-core", "workspace-full"] as const
export type McpProfile = (typeof MCP_PROFILES)[number]
/** The original's default since its 4.0: a model starts with the small workspace surface. */
export const DEFAULT_MCP_PROFILE: McpProfile = "workspace-core"

/** One tool of a profile. */
export interface ProfileTool {
  readonly tool: string
  /**
   * Input fields this profile hides. Each must be optional without a default,
   * so that a hidden field reaches the handler exactly as if a caller had left it out.
   */
  readonly omit?: ReadonlyArray<string>
  /**
   * The description for this profile, where the operation's own would point at
   * what the profile hides: a text, or the operation's own rewritten.
   */
  readonly description?: string | ((own: string) => string)
}

export interface ProfileSpec {
  /** One line for `--help` and docs. */
  readonly summary: string
  /** The MCP server's `instructions` under this profile. */
  readonly instructions: string
  /** Its tools in the order listed; "every" is the whole operations table. */
  readonly tools: ReadonlyArray<ProfileTool> | "every"
}

/** Inputs that reach beyond the workspace itself: the guest's network and the host's secrets. */
const OUTWARD_CREATE_FIELDS = ["network", "network_policy", "allow_hosts", "secrets"]

/**
 * The table. Tools named here without an operation yet (list, update, reset,
 * summary: being added beside this) are skipped until they exist.
 */
export const PROFILES: Readonly<Record<McpProfile, ProfileSpec>> = {
  "vm-run": {
    summary: "vm_run only: one command per call in a fresh, disposable VM",
    instructions: "pyro runs commands in Linux micro-VMs. vm_run runs one command in a fresh VM and returns its " +
      "output; nothing persists between calls, so put every step of a task in one command line.",
    tools: [{
      tool: "vm_run",
      // vm_list_environments is not served here: name the environments instead.
      description: (own) =>
        own.replace(
          /Use vm_list_environments to see environment names \([^)]*\)\. /,
          "environment: debian:12 (git, python3, curl), debian:12-base, debian:12-build (compilers), or tiny " +
            "(busybox, fastest to start). "
        )
    }]
  },
  "workspace-core": {
    summary: "persistent workspaces without network, secrets, services or shells (the default)",
    instructions: "pyro gives you persistent Linux machines (micro-VMs) called workspaces. workspace_create starts " +
      "one (seed_path copies a host directory into /workspace); workspace_exec runs commands in it, and its files " +
      "stay for the next command. Read and edit files with workspace_file_read, workspace_file_write and " +
      "workspace_patch_apply; workspace_diff shows what changed since create; workspace_export copies results to the " +
      "host. Workspaces have no network. Call workspace_delete when done. Environments: vm_list_environments.",
    tools: [
      { tool: "vm_list_environments" },
      {
        tool: "workspace_create",
        omit: OUTWARD_CREATE_FIELDS,
        description: "Create a persistent workspace: a Linux VM, without network, whose /workspace (and every other " +
          "file it writes) survives between commands, until workspace_delete or ttl_seconds after creation. " +
          "Optionally seeded from a host directory or .tar/.tar.gz/.tgz (seed_path), copied in before this returns. " +
          "Returns workspace_id for workspace_exec."
      },
      { tool: "workspace_list" },
      { tool: "workspace_update" },
      { tool: "workspace_status" },
      { tool: "workspace_logs" },
      { tool: "workspace_sync_push" },
      { tool: "workspace_exec", omit: ["secret_env"] },
      { tool: "workspace_file_list" },
      { tool: "workspace_file_read" },
      { tool: "workspace_file_write" },
      { tool: "workspace_patch_apply" },
      { tool: "workspace_diff" },
      { tool: "workspace_export" },
      // Snapshots are not in this profile, so reset goes back to the baseline only.
      { tool: "workspace_reset", omit: ["snapshot"] },
      { tool: "workspace_summary" },
      { tool: "workspace_delete" }
    ]
  },
  "workspace-full": {
    summary: "every tool: vm_*, workspaces with network and secrets, services, shells",
    instructions: "pyro runs commands in Linux micro-VMs. vm_run: one command in a fresh, disposable VM. " +
      "workspace_create + workspace_exec: a persistent machine whose /workspace keeps its files between commands " +
      "(seed it from a host directory; workspace_sync_push copies more in). While commands run, workspace_file_read, " +
      "workspace_file_write and workspace_patch_apply edit its files, workspace_diff shows what changed since create, " +
      "and workspace_export copies results to the host. Environments: vm_list_environments.",
    tools: "every"
  }
}

/** The fields of an input schema, each with whether it is optional once decoded (no default fills it in). */
const inputFields = (op: Operation): ReadonlyMap<PropertyKey, boolean> =>
  new Map(SchemaAST.getPropertySignatures(op.input.ast).map((ps) => [ps.name, ps.isOptional]))

/**
 * `op` as `entry` shows it. Hiding a field that is not an optional input of
 * the operation is a mistake in the table, and fails loudly rather than
 * leaving the field visible.
 */
const narrow = (op: Operation, entry: ProfileTool): Operation => {
  const omit = entry.omit ?? []
  const fields = inputFields(op)
  for (const field of omit) {
    if (fields.get(field) !== true) throw new Error(`profile table: ${op.tool} has no optional input field ${field} to hide`)
  }
  return {
    ...op,
    ...(entry.description
      ? { description: typeof entry.description === "string" ? entry.description : entry.description(op.description) }
      : {}),
    ...(omit.length > 0 ? { input: Schema.make(SchemaAST.omit(op.input.ast, omit)) } : {})
  }
}

const resolved = new Map<McpProfile, ReadonlyArray<Operation>>()

/** The operations a profile serves, narrowed, in its order; made once per profile. */
export const profileOperations = (profile: McpProfile): ReadonlyArray<Operation> => {
  let ops = resolved.get(profile)
  if (!ops) {
    const { tools } = PROFILES[profile]
    const byTool = new Map(ALL_OPERATIONS.map((op) => [op.tool, op]))
    ops = tools === "every"
      ? ALL_OPERATIONS
      : tools.flatMap((entry) => {
        const op = byTool.get(entry.tool)
        return op ? [narrow(op, entry)] : []
      })
    resolved.set(profile, ops)
  }
  return ops
}

export const isMcpProfile = (value: string): value is McpProfile => (MCP_PROFILES as ReadonlyArray<string>).includes(value)
