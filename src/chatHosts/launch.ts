/**
 * The one command every chat host is given to start pyro's MCP server: the
 * published package through npx (`npx -y pyro-sandbox mcp serve`), the way
 * hosts start other MCP servers, or this install's own bin/pyro.js by its
 * absolute path. Configs, `host connect` and `host doctor` all derive from it.
 */
import * as Path from "node:path"
import type { McpProfile } from "../api/profiles.js"
import { packageRoot } from "../host/packageRoot.js"

/** The npm package's name (package.json `name`); a test keeps the two equal. */
export const PACKAGE_NAME = "pyro-sandbox"
/** The name pyro is registered under in every host. */
export const SERVER_KEY = "pyro"

export interface ServerLaunch {
  readonly command: string
  readonly args: ReadonlyArray<string>
}

export interface LaunchOptions {
  /** Start this install's bin/pyro.js with this Node, by absolute paths, instead of npx. */
  readonly local?: boolean
  /**
   * What npx installs instead of the published package: a version
   * (`pyro-sandbox@0.1.0`), a tarball path or a git URL. npx runs a bare spec
   * only when it is a registry name, so this one is passed as --package.
   */
  readonly packageSpec?: string
  /** Only when given: the server's default is left to the server. */
  readonly profile?: McpProfile
  /** Passed on as `--project-path` (absolute: hosts start servers in a directory of their own choosing). */
  readonly projectPath?: string
  /** Passed on as `--repo-url`, and `--repo-ref` with it. */
  readonly repoUrl?: string
  readonly repoRef?: string
}

/** The project-source flags of the registered command, as given (`pyro mcp serve` checks them when it starts). */
const projectFlags = (options: LaunchOptions): Array<string> => [
  ...(options.projectPath === undefined ? [] : ["--project-path", Path.resolve(options.projectPath)]),
  ...(options.repoUrl === undefined ? [] : ["--repo-url", options.repoUrl]),
  ...(options.repoRef === undefined ? [] : ["--repo-ref", options.repoRef])
]

export const serverLaunch = (options: LaunchOptions = {}): ServerLaunch => {
  const serve = ["mcp", "serve", ...(options.profile ? ["--profile", options.profile] : []), ...projectFlags(options)]
  return options.local
    ? { command: process.execPath, args: [Path.join(packageRoot(), "bin", "pyro.js"), ...serve] }
    : options.packageSpec
    ? { command: "npx", args: ["-y", `--package=${options.packageSpec}`, "pyro", ...serve] }
    : { command: "npx", args: ["-y", PACKAGE_NAME, ...serve] }
}

/** As a shell would take it, for messages. */
export const commandLine = (launch: ServerLaunch): string =>
  [launch.command, ...launch.args].map((word) => (/^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, "'\\''")}'`))
    .join(" ")
