/**
 * Every git command a project source runs. The operator chose the
 * repository, but its contents and its own config are not trusted, so each
 * call turns off what a repository's config could make git run or reach:
 * hooks, an fsmonitor command, and every transport but local files (the
 * machines pyro runs on must not fetch from the network). A clone also
 * ignores the user's and the system's config (no filter driver, such as
 * git-lfs's, runs at checkout). Never a prompt: git has no terminal here.
 */
import { runHostCommand } from "../../host/command.js"

const SAFETY = [
  "-c", "core.hooksPath=/dev/null",
  "-c", "core.fsmonitor=false",
  "-c", "protocol.allow=never",
  "-c", "protocol.file.allow=always"
]

/** A clean clone: neither the user's nor the system's git config applies. */
export const CLEAN_CONFIG_ENV = { GIT_CONFIG_GLOBAL: "/dev/null", GIT_CONFIG_NOSYSTEM: "1" }

/** The most `git ls-files -z` may print: about half a million paths. */
const MAX_LISTING = 64 * 1024 * 1024

export const runGit = (
  args: ReadonlyArray<string>,
  options: { readonly cwd?: string; readonly env?: Record<string, string>; readonly wholeOutput?: boolean } = {}
) =>
  runHostCommand("git", [...SAFETY, ...args], {
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    env: { GIT_TERMINAL_PROMPT: "0", GIT_OPTIONAL_LOCKS: "0", ...options.env },
    ...(options.wholeOutput ? { maxStdout: MAX_LISTING } : {})
  })
