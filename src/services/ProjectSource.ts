/**
 * The project a server seeds new workspaces from when a caller gives no
 * `seed_path` (docs/public-contract.md, "Project-aware start"): a Git
 * checkout's tracked files as they are in its working tree, a host-side clone
 * of a local repository at one commit, or nothing (the default).
 *
 * The operator chooses it (`pyro mcp serve` in a checkout, `--project-path`,
 * `--repo-url`; `new Pyro({ projectPath })`); it is resolved once, when the
 * server starts, and reaches `workspace_create` and the tool descriptions
 * through this reference, as `Caller` does. The files themselves are not
 * trusted: they go through the archive policy like any seed.
 */
import * as Context from "effect/Context"

export type ProjectSourceShape =
  | { readonly kind: "none" }
  /** `root`: the checkout's top level (git rev-parse --show-toplevel), absolute. */
  | { readonly kind: "project_path"; readonly root: string }
  | {
    readonly kind: "repo_url"
    /** As the operator gave it (a local path made absolute, or a file:// URL). */
    readonly url: string
    /** The ref asked for, or null for the repository's HEAD. */
    readonly ref: string | null
    /** The commit checked out, in full. */
    readonly commit: string
    /** The host-side clone's working tree, removed when the server exits. */
    readonly checkout: string
  }

export const NO_PROJECT_SOURCE: ProjectSourceShape = { kind: "none" }

export class ProjectSource extends Context.Reference<ProjectSource>()("pyro/ProjectSource", {
  defaultValue: (): ProjectSourceShape => NO_PROJECT_SOURCE
}) {}
