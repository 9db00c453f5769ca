/**
 * The project-source options `pyro mcp serve` takes and `pyro host
 * connect|print-config` passes on into the command it registers
 * (src/workspace/project/flags.ts has their rules).
 */
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import { type ProjectFlags, type ProjectRequest, projectRequest } from "../workspace/project/flags.js"
import { UsageError } from "./usage.js"

export const projectOptions = {
  projectPath: Options.text("project-path").pipe(
    Options.optional,
    Options.withDescription("Seed new workspaces from this Git checkout's tracked files (default: the checkout the server starts in, if any)")
  ),
  repoUrl: Options.text("repo-url").pipe(
    Options.optional,
    Options.withDescription("Seed new workspaces from a clone of this repository: a local path or a file:// URL")
  ),
  repoRef: Options.text("repo-ref").pipe(
    Options.optional,
    Options.withDescription("With --repo-url: the branch, tag or commit to check out (default: the repository's HEAD)")
  )
}

export interface ProjectOptionValues {
  readonly projectPath: Option.Option<string>
  readonly repoUrl: Option.Option<string>
  readonly repoRef: Option.Option<string>
}

/** The options given, as plain flags (absent ones left out). */
export const projectFlagsOf = (
  args: ProjectOptionValues
): { readonly projectPath?: string; readonly repoUrl?: string; readonly repoRef?: string } => ({
  ...Option.match(args.projectPath, { onNone: () => ({}), onSome: (projectPath) => ({ projectPath }) }),
  ...Option.match(args.repoUrl, { onNone: () => ({}), onSome: (repoUrl) => ({ repoUrl }) }),
  ...Option.match(args.repoRef, { onNone: () => ({}), onSome: (repoRef) => ({ repoRef }) })
})

/** What the flags ask for, relative to this process's directory; a bad combination is a usage error (exit 2). */
export const checkedProjectRequest = (flags: ProjectFlags): Effect.Effect<ProjectRequest, UsageError> =>
  Either.match(projectRequest(flags, process.cwd()), {
    onLeft: (detail) => Effect.fail(new UsageError({ detail })),
    onRight: Effect.succeed
  })
