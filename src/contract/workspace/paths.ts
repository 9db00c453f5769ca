/**
 * Paths and ids of workspaces as tools take them. Paths inside a workspace: relative to /workspace or
 * absolute under it, normalised to the absolute form results carry
 * (`src/a.txt` → `/workspace/src/a.txt`). `..` is refused, not resolved.
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { ExecutionMode } from "../common.js"

export const WORKSPACE_PATH = "/workspace"
export const WorkspaceId = Schema.String.pipe(
  Schema.pattern(/^[0-9a-f]{12}$/, { message: () => "must be a workspace_id as returned by workspace_create (12 hex digits)" }),
  Schema.annotations({ description: "The workspace's id, as returned by workspace_create." })
)


// `jsonSchema` on a filter keeps its annotations (description, default) in the tools' JSON Schema.
export const HostPath = Schema.String.pipe(
  Schema.minLength(1),
  Schema.maxLength(4096),
  Schema.filter((s) => !s.includes("\0") || "must not contain NUL", { jsonSchema: {} })
)

/** A guest path that stays under /workspace once normalised. */
export const WorkspaceDest = Schema.String.pipe(
  Schema.filter((s) => {
    if (s.includes("\0")) return "must not contain NUL"
    if (!s.startsWith("/")) return "must be an absolute guest path under /workspace"
    const parts = s.split("/").filter((p) => p !== "" && p !== ".")
    if (parts.includes("..")) return "must not contain .."
    if (parts[0] !== "workspace") return "must be /workspace or a directory under it"
    return true
  }, { jsonSchema: { pattern: "^/workspace(/.*)?$" } }),
  Schema.annotations({ description: "Where in the guest to put the files: /workspace or a directory under it." })
)

/** The guest's own limit on a path (PATH_MAX). */
export const MAX_WORKSPACE_PATH_BYTES = 4096

/** The absolute, normalised form of a guest path (relative ones are under /workspace), or why it is none. */
export const normalizeGuestPath = (path: string): Either.Either<string, string> => {
  if (path.includes("\0")) return Either.left("must not contain NUL")
  const parts = (path.startsWith("/") ? path : `${WORKSPACE_PATH}/${path}`).split("/").filter((p) => p !== "" && p !== ".")
  if (parts.includes("..")) return Either.left("must not contain ..")
  const normal = `/${parts.join("/")}`
  if (Buffer.byteLength(normal) > MAX_WORKSPACE_PATH_BYTES) return Either.left(`must be at most ${MAX_WORKSPACE_PATH_BYTES} bytes`)
  return Either.right(normal)
}

/** The absolute, normalised form of `path`, or why it is not a path under /workspace. */
export const normalizeWorkspacePath = (path: string): Either.Either<string, string> =>
  Either.flatMap(normalizeGuestPath(path), (normal) =>
    normal === WORKSPACE_PATH || normal.startsWith(`${WORKSPACE_PATH}/`)
      ? Either.right(normal)
      : Either.left("must be under /workspace (absolute, or relative to /workspace)"))

/** A string decoded to the normal form `normalize` gives it, or refused with its reason. */
export const normalizedString = (description: string, normalize: (s: string) => Either.Either<string, string>) =>
  Schema.transformOrFail(Schema.String.annotations({ description }), Schema.String, {
    strict: true,
    decode: (s, _, ast) =>
      Either.match(normalize(s), {
        onLeft: (why) => ParseResult.fail(new ParseResult.Type(ast, s, why)),
        onRight: ParseResult.succeed
      }),
    encode: ParseResult.succeed
  })

/** A path under /workspace, decoded to its absolute normal form. */
export const WorkspacePath = normalizedString(
  "A path in the workspace: relative to /workspace, or absolute under it (no ..).",
  normalizeWorkspacePath
)

/** What every result about one workspace carries. */
export const WorkspaceResultFields = {
  workspace_id: Schema.String,
  execution_mode: ExecutionMode
}
