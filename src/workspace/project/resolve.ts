/**
 * From the operator's request (./flags.ts) to the source a server seeds
 * from, once, when it starts:
 *
 * - detect: the top level of the checkout the server starts in, if any (not
 *   `/`, the home directory or above it: a dotfiles repository there would
 *   hand a caller the user's files, as the default import roots avoid);
 * - `--project-path`: that checkout's top level, or a failure;
 * - `--repo-url`: a clone in a temporary directory, removed when the scope
 *   closes (the server exits), checked out at `--repo-ref` or HEAD.
 *
 * The clone is made here at start-up rather than at the first create: the
 * tool description names its commit, a wrong URL or ref stops the server
 * with a clear message instead of failing a model's call, and every create
 * seeds from the same commit.
 */
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import type { HostCommandFailed } from "../../host/command.js"
import { NO_PROJECT_SOURCE, type ProjectSourceShape } from "../../services/ProjectSource.js"
import { holdsHome } from "../import/roots.js"
import { ProjectSourceError } from "./errors.js"
import type { ProjectRequest } from "./flags.js"
import { CLEAN_CONFIG_ENV, runGit } from "./git.js"

const gitDetail = (error: HostCommandFailed) => error.output.trim().split("\n").slice(-3).join("; ") || error.message

/** The top level of the working tree `dir` is in. */
const topLevel = (dir: string) =>
  runGit(["rev-parse", "--show-toplevel"], { cwd: dir }).pipe(Effect.map(({ stdout }) => stdout.replace(/\n$/, "")))

const detect = (cwd: string) =>
  topLevel(cwd).pipe(
    Effect.option,
    Effect.flatMap((found) => {
      if (found._tag === "None") return Effect.succeed(NO_PROJECT_SOURCE)
      const root = found.value
      if (holdsHome(root)) {
        return Effect.as(
          Effect.logWarning(`project source: not using the checkout at ${root} (it is /, the home directory or above it); give --project-path to use it`),
          NO_PROJECT_SOURCE
        )
      }
      return Effect.succeed<ProjectSourceShape>({ kind: "project_path", root })
    })
  )

const projectPath = (path: string) =>
  Effect.gen(function*() {
    if (!Fs.existsSync(path) || !Fs.statSync(path).isDirectory()) {
      return yield* new ProjectSourceError({ detail: `--project-path ${path} is not a directory` })
    }
    const root = yield* topLevel(path).pipe(
      Effect.mapError((e) => new ProjectSourceError({ detail: `--project-path ${path} is not in a Git working tree (${gitDetail(e)})` }))
    )
    return { kind: "project_path", root } satisfies ProjectSourceShape
  })

/** The commit `ref` names in a fresh clone: a tag, a commit, the default branch, or another branch of origin. */
const resolveRef = (checkout: string, ref: string | null) =>
  Effect.gen(function*() {
    const candidates = ref === null ? ["HEAD"] : [ref, `refs/remotes/origin/${ref}`]
    for (const candidate of candidates) {
      const found = yield* runGit(["rev-parse", "--verify", "--quiet", `${candidate}^{commit}`], { cwd: checkout }).pipe(Effect.option)
      if (found._tag === "Some") return found.value.stdout.trim()
    }
    return yield* new ProjectSourceError({
      detail: ref === null ? "the repository has no commit at HEAD" : `--repo-ref ${ref} names no branch, tag or commit of the repository`
    })
  })

const repoClone = (url: string, ref: string | null) =>
  Effect.gen(function*() {
    const dir = yield* Effect.acquireRelease(
      Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "pyro-project-"))),
      (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
    )
    const checkout = Path.join(dir, "checkout")
    const failed = (what: string) => (e: HostCommandFailed) => new ProjectSourceError({ detail: `${what}: ${gitDetail(e)}` })
    yield* runGit(["clone", "--quiet", "--no-checkout", "--no-hardlinks", "--", url, checkout], { env: CLEAN_CONFIG_ENV })
      .pipe(Effect.mapError(failed(`cannot clone --repo-url ${url}`)))
    const commit = yield* resolveRef(checkout, ref)
    yield* runGit(["checkout", "--quiet", "--detach", commit], { cwd: checkout, env: CLEAN_CONFIG_ENV })
      .pipe(Effect.mapError(failed(`cannot check out ${commit}`)))
    return { kind: "repo_url", url, ref, commit, checkout } satisfies ProjectSourceShape
  })

export const resolveProjectSource = (
  request: ProjectRequest
): Effect.Effect<ProjectSourceShape, ProjectSourceError, CommandExecutor.CommandExecutor | Scope.Scope> => {
  switch (request.kind) {
    case "none":
      return Effect.succeed(NO_PROJECT_SOURCE)
    case "detect":
      return detect(request.cwd)
    case "project_path":
      return projectPath(request.path)
    case "repo_url":
      return repoClone(request.url, request.ref)
  }
}
