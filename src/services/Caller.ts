/**
 * Who asked for the operation in progress, and so what it may reach on the
 * host (docs/security.md).
 *
 * - The **operator** starts the CLI, the MCP server or the SDK and sets their
 *   environment, flags and options: trusted, as in their own shell.
 * - A **tool caller** is an MCP client or input handed to the SDK: a model,
 *   possibly prompt-injected. Untrusted: it may only do what the operator
 *   granted (run on the host, import from some directories, name registries on
 *   private addresses), and its results are sized for a model.
 *
 * The CLI's own commands run as the operator; `pyro mcp serve` and the SDK run
 * every call as a tool caller. The default, for anything that forgets to say,
 * is the untrusted caller with no grants.
 */
import * as Context from "effect/Context"

export type CallerShape =
  | { readonly kind: "operator" }
  | {
    readonly kind: "tool"
    /**
     * The operator allows running commands on the host itself when this host
     * cannot run guests at all (`pyro mcp serve --allow-host-compat`,
     * `new Pyro({ allowHostCompat: true })`). A caller's `allow_host_compat`
     * alone never does.
     */
    readonly hostCompat: boolean
  }

export const OPERATOR: CallerShape = { kind: "operator" }

export const toolCaller = (grants: { readonly hostCompat: boolean } = { hostCompat: false }): CallerShape => ({
  kind: "tool",
  hostCompat: grants.hostCompat
})

export class Caller extends Context.Reference<Caller>()("pyro/Caller", {
  defaultValue: (): CallerShape => toolCaller()
}) {}
