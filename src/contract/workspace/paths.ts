/**
 * Paths inside a workspace, as tools take them: relative to /workspace or
 * absolute under it, normalised to the absolute form results carry
 * (`src/a.txt` → `/workspace/src/a.txt`). `..` is refused, not resolved.
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { ExecutionMode } from "../common.js"

export const WORKSPACE_ROOT = "/workspace"
/** The guest's own limit on a path (PATH_MAX). */
export const MAX_WORKSPACE_PATH_BYTES = 4096

/** The absolute, normalised form of `path`, or why it is not a path under /workspace. */
export const normalizeWorkspacePath = (path: string): Either.Either<string, string> => {
  if (path.includes("\0")) return Either.left("must not contain NUL")
  const parts = (path.startsWith("/") ? path : `${WORKSPACE_ROOT}/${path}`).split("/").filter((p) => p !== "" && p !== ".")
  if (parts.includes("..")) return Either.left("must not contain ..")
  if (parts[0] !== "workspace") return Either.left("must be under /workspace (absolute, or relative to /workspace)")
  const normal = `/${parts.join("/")}`
  if (Buffer.byteLength(normal) > MAX_WORKSPACE_PATH_BYTES) return Either.left(`must be at most ${MAX_WORKSPACE_PATH_BYTES} bytes`)
  return Either.right(normal)
}

/** A path under /workspace, decoded to its absolute normal form. */
export const WorkspacePath = Schema.transformOrFail(
  Schema.String.annotations({
    description: "A path in the workspace: relative to /workspace, or absolute under it (no ..)."
  }),
  Schema.String,
  {
    strict: true,
    decode: (path, _, ast) =>
      Either.match(normalizeWorkspacePath(path), {
        onLeft: (why) => ParseResult.fail(new ParseResult.Type(ast, path, why)),
        onRight: ParseResult.succeed
      }),
    encode: ParseResult.succeed
  }
)

/** What every result about one workspace carries. */
export const WorkspaceResultFields = {
  workspace_id: Schema.String,
  execution_mode: ExecutionMode
}
