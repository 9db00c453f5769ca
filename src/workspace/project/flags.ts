/**
 * The operator's project-source flags, checked before anything runs:
 * `--project-path PATH`, `--repo-url URL [--repo-ref REF]`,
 * `--no-project-source`, or none of them (detect the checkout the server
 * starts in). A repository is only ever a local path or a `file://` URL:
 * pyro's hosts must not fetch from the network. Pure, so every rule has a
 * unit test (test/unit/projectFlags.test.ts).
 */
import * as Either from "effect/Either"
import * as Path from "node:path"

export interface ProjectFlags {
  readonly projectPath?: string | undefined
  readonly repoUrl?: string | undefined
  readonly repoRef?: string | undefined
  readonly noProjectSource?: boolean | undefined
}

export type ProjectRequest =
  | { readonly kind: "none" }
  /** The checkout `cwd` is in, if it is in one. */
  | { readonly kind: "detect"; readonly cwd: string }
  | { readonly kind: "project_path"; readonly path: string }
  | { readonly kind: "repo_url"; readonly url: string; readonly ref: string | null }

const URL_SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//
/** `host:path` (git's scp-like ssh address): a colon before any slash. */
const SCP_LIKE = /^[^/]*:/
const CONTROL_OR_SPACE = /[\s\u0000-\u001f\u007f]/

const repoUrlProblem = (url: string): string | undefined => {
  if (url === "") return "is empty"
  if (CONTROL_OR_SPACE.test(url)) return "holds white space or a control character"
  const scheme = URL_SCHEME.exec(url)?.[1]?.toLowerCase()
  const onlyLocal = "only a local path or a file:// URL is accepted (pyro never fetches a repository over the network)"
  if (scheme !== undefined) {
    if (scheme !== "file") return `is a ${scheme}:// URL; ${onlyLocal}`
    let parsed: URL
    try {
      parsed = new URL(url)
    } catch {
      return "is not a valid file:// URL"
    }
    if (parsed.host !== "" && parsed.host !== "localhost") return `names the host ${parsed.host}; ${onlyLocal}`
    return undefined
  }
  if (SCP_LIKE.test(url)) return `looks like an ssh address (host:path); ${onlyLocal}`
  return undefined
}

const refProblem = (ref: string): string | undefined =>
  ref === ""
    ? "is empty"
    : ref.startsWith("-")
    ? "starts with \"-\""
    : CONTROL_OR_SPACE.test(ref)
    ? "holds white space or a control character"
    : ref.length > 256
    ? "is longer than 256 characters"
    : undefined

/** What the flags ask for, or why they cannot be taken (a usage error). Relative paths are resolved against `cwd`. */
export const projectRequest = (flags: ProjectFlags, cwd: string): Either.Either<ProjectRequest, string> => {
  const { noProjectSource, projectPath, repoRef, repoUrl } = flags
  if (noProjectSource && (projectPath !== undefined || repoUrl !== undefined || repoRef !== undefined)) {
    return Either.left("--no-project-source turns project sources off: give it without --project-path, --repo-url or --repo-ref")
  }
  if (projectPath !== undefined && repoUrl !== undefined) {
    return Either.left("give --project-path or --repo-url, not both")
  }
  if (repoRef !== undefined && repoUrl === undefined) return Either.left("--repo-ref goes with --repo-url")
  if (noProjectSource) return Either.right({ kind: "none" })
  if (projectPath !== undefined) {
    if (projectPath === "") return Either.left("--project-path is empty")
    return Either.right({ kind: "project_path", path: Path.resolve(cwd, projectPath) })
  }
  if (repoUrl !== undefined) {
    const problem = repoUrlProblem(repoUrl)
    if (problem !== undefined) return Either.left(`--repo-url ${JSON.stringify(repoUrl)} ${problem}`)
    const ref = repoRef === undefined ? undefined : refProblem(repoRef)
    if (ref !== undefined) return Either.left(`--repo-ref ${JSON.stringify(repoRef)} ${ref}`)
    return Either.right({
      kind: "repo_url",
      url: URL_SCHEME.test(repoUrl) ? repoUrl : Path.resolve(cwd, repoUrl),
      ref: repoRef ?? null
    })
  }
  return Either.right({ kind: "detect", cwd })
}
