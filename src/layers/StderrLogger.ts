/**
 * Effect's logs go to stderr, never stdout: stdout belongs to the command's
 * output (`pyro run`), JSON results (`--json`) and, for `pyro mcp serve` and
 * an SDK server on stdio, the MCP protocol itself, which one stray line breaks.
 */
import * as Logger from "effect/Logger"

export const stderrLogger = (colors: boolean) =>
  Logger.replace(Logger.defaultLogger, Logger.prettyLogger({ stderr: true, colors }))
